"""Inside ``remembering_files`` (one chained step task), a small file read or written once
is read again from memory; outside it, every read goes to the object store and checks
the stored bytes against their digest."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from typing import Any

import pytest

from bus.filememo import FileMemo, remembering_files
from bus.objectstore import SMALL_FILE, IntegrityError
from bus.runtime import Runtime
from bus.settings import Settings
from tests.tamper import flip, restore

pytestmark = pytest.mark.stack
CITY = "216900910"


def _counting(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count the store client's GETs and PUTs."""
    calls: Counter[str] = Counter()
    client = runtime.store.client
    for name in ("get_object", "put_object"):
        real = getattr(client, name)

        def spy(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(client, name, spy)
    return calls


async def test_a_chain_reads_a_file_once_and_what_it_wrote_not_at_all(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = Runtime(settings)
    store = runtime.store
    stored = store.put_bytes(CITY, os.urandom(50_000), name="bulletin.pdf")
    calls = _counting(runtime, monkeypatch)
    with remembering_files():
        first = await asyncio.to_thread(store.read_file, CITY, stored)  # validate
        again = await asyncio.to_thread(store.read_file, CITY, stored)  # sign
        signed = await asyncio.to_thread(store.put_bytes, CITY, first + b"signed",
                                         name="bulletin-signe.pdf", unique=True)
        deposited = b"".join(store.iter_file(CITY, signed))  # deposit
    assert first == again and deposited == first + b"signed"
    assert calls == {"get_object": 1, "put_object": 1}
    assert store.read_file(CITY, signed) == deposited  # outside: from the store
    assert calls["get_object"] == 2


def test_outside_a_chain_every_read_checks_the_store(settings: Settings) -> None:
    store = Runtime(settings).store
    ref = store.put_bytes(CITY, f"note {uuid.uuid4()}".encode(), name="note.txt")
    key = store.file_key(CITY, ref.sha256)
    assert store.read_file(CITY, ref)
    saved = flip(store.client, store.bucket, key)
    try:
        with pytest.raises(IntegrityError):
            store.read_file(CITY, ref)
    finally:
        restore(store.client, store.bucket, key, saved)


def test_a_large_file_or_a_full_budget_is_not_kept() -> None:
    memo = FileMemo(budget=100)
    memo.keep(("b", CITY, "a" * 64), b"x" * 60)
    memo.keep(("b", CITY, "b" * 64), b"y" * 60)  # over what is left of the budget
    assert memo.get(("b", CITY, "a" * 64)) == b"x" * 60
    assert memo.get(("b", CITY, "b" * 64)) is None
    assert SMALL_FILE < 8 * 1024 * 1024  # a kept file is small; the default budget holds 8

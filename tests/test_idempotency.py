"""Idempotency keys in PostgreSQL: one document per key, whoever claims first, under
concurrency; a different content is refused naming the key; a released key is free."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from bus.database import Database
from bus.idempotency import IdempotencyKeys
from bus.intake import SubmissionError
from schemas.envelope import Envelope, FileRef

TENANT = "216900910"


def _env(key: str | None = "paie-2026-11-0042", producer: str = "rh",
         sha: str = "a") -> Envelope:
    return Envelope(tenant=TENANT, flow="document", metadata={"title": "t"},
                    idempotency_key=key, producer=producer,
                    files=[FileRef(sha256=sha * 64, size=1, name="a.pdf",
                                   media_type="application/pdf")])


def test_the_first_claim_holds_the_key_and_the_others_find_it(pg_url: str) -> None:
    keys = IdempotencyKeys(Database(pg_url))
    first, again = _env(), _env()
    assert keys.find(first) is None and keys.claim(first) is None
    assert keys.claim(first) is None  # the same document claims again: its own key
    assert keys.claim(again) == first.id and keys.find(again) == first.id
    assert keys.claim(_env(producer="finances")) is None  # keys are per producer
    assert keys.claim(_env(key=None)) is None


def test_a_key_reused_with_other_content_is_refused_naming_it(pg_url: str) -> None:
    keys = IdempotencyKeys(Database(pg_url))
    first = _env()
    keys.claim(first)
    with pytest.raises(SubmissionError) as refused:
        keys.claim(_env(sha="b"))
    assert refused.value.field == "idempotency_key" and first.id in str(refused.value)


def test_a_released_key_is_free_and_only_its_holder_releases_it(pg_url: str) -> None:
    keys = IdempotencyKeys(Database(pg_url))
    first, second = _env(), _env()
    keys.claim(first)
    keys.release(second)  # not the holder: nothing changes
    assert keys.find(second) == first.id
    keys.release(first)
    assert keys.claim(second) is None and keys.find(first) == second.id


def test_simultaneous_claims_from_several_connections_make_one_holder(pg_url: str) -> None:
    envs = [_env() for _ in range(20)]
    doors = [IdempotencyKeys(Database(pg_url)) for _ in range(5)]  # five processes' worth

    def claim(i: int) -> str | None:
        return doors[i % len(doors)].claim(envs[i])

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(claim, range(len(envs))))
    holders = [env.id for env, got in zip(envs, answers, strict=True) if got is None]
    assert len(holders) == 1
    assert {got for got in answers if got is not None} == set(holders)

"""ACTES archives read back from S²LOW: bounded, flat, no name twice."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from connectors.s2low.actes.archive import unpack
from connectors.s2low.actes.common import ActesError


def _tgz(members: list[tuple[str, bytes, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            info.size, info.type = len(data), kind
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


HOSTILE = [
    ("twice", [("a.pdf", b"1", tarfile.REGTYPE), ("a.pdf", b"2", tarfile.REGTYPE)], "twice"),
    ("too-large", [("a.pdf", b"\0" * 2048, tarfile.REGTYPE)], "expands beyond 1024"),
    ("path", [("x/a.pdf", b"1", tarfile.REGTYPE)], "not allowed"),
    ("hidden", [(".a", b"1", tarfile.REGTYPE)], "not allowed"),
    ("symlink", [("a.pdf", b"", tarfile.SYMTYPE)], "not allowed"),
]


@pytest.mark.parametrize(("name", "members", "reason"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_archive_refused(name: str, members: list, reason: str) -> None:
    with pytest.raises(ActesError, match=reason):
        unpack(_tgz(members), max_bytes=1024)


def test_flat_archive_read() -> None:
    data = _tgz([("a.pdf", b"1", tarfile.REGTYPE), ("b.xml", b"<b/>", tarfile.REGTYPE)])
    assert unpack(data) == {"a.pdf": b"1", "b.xml": b"<b/>"}

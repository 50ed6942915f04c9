"""The interface every deposit target (GED folder, WebDAV, ...) offers the deposit step."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Protocol


@dataclass
class DepositFile:
    """One file to deposit: its name, digest and content as chunks."""

    name: str
    chunks: Iterable[bytes]
    sha256: str = ""


class DepositTarget(Protocol):
    """Deposit once; ``lookup`` tells whether a document was already deposited."""

    async def lookup(self, tenant: str, doc_id: str) -> dict[str, Any] | None: ...

    async def deposit(self, tenant: str, doc_id: str, files: list[DepositFile],
                      metadata: dict[str, Any]) -> dict[str, Any]: ...


def side_by_side(names: Iterable[str], reserved: Iterable[str] = ()) -> list[str]:
    """One distinct name per file, in order: the first keeps its name, a later one with
    the same name (compared case- and normalisation-insensitively, as Windows shares and
    archives do) or a ``reserved`` one (the target's own ``metadata.json``...) becomes
    ``stem-2.ext``, ``stem-3.ext``... (the first number free): never overwritten, never
    hidden, and the same names give the same result on every retry."""
    taken = {_key(n) for n in reserved}
    out: list[str] = []
    for name in names:
        candidate, n = name, 1
        while _key(candidate) in taken:
            n += 1
            candidate = _numbered(name, n)
        taken.add(_key(candidate))
        out.append(candidate)
    return out


def _numbered(name: str, n: int) -> str:
    path = PurePosixPath(name)
    stem, ext = (path.stem, path.suffix) if path.stem and path.suffix else (name, "")
    return f"{stem}-{n}{ext}"


def _key(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()

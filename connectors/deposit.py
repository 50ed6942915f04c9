"""The interface every deposit target (GED folder, WebDAV, ...) offers the deposit step."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
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


async def aiter_chunks(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    """Read a blocking chunk iterator from a thread, one chunk at a time."""
    it: Iterator[bytes] = iter(chunks)
    sentinel = b""
    while True:
        chunk = await asyncio.to_thread(next, it, sentinel)
        if chunk is sentinel:
            return
        yield chunk

"""The interface every deposit target (GED folder, WebDAV, ...) offers the deposit step."""

from __future__ import annotations

from collections.abc import Iterable
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

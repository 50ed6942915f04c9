"""Small files kept in memory for the length of one piece of work (a chained step task),
so that the steps of a chain read once what the first of them read or wrote.

Inside ``remembering_files()``, the object store keeps every small file it has read and
verified, or written, and serves it again from memory; outside, nothing is kept. A
file is kept under its SHA-256 (the content it was verified against), per bucket and
tenant, up to ``BUDGET`` bytes in all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

BUDGET = 8 * 1024 * 1024  # bytes one piece of work keeps at most
FileKey = tuple[str, str, str]  # bucket, tenant, sha256


class FileMemo:
    """The files one piece of work has read or written, by key, within a byte budget."""

    def __init__(self, budget: int = BUDGET) -> None:
        self.budget = budget
        self._files: dict[FileKey, bytes] = {}

    def get(self, key: FileKey) -> bytes | None:
        return self._files.get(key)

    def keep(self, key: FileKey, data: bytes) -> None:
        if key not in self._files and len(data) <= self.budget:
            self._files[key] = data
            self.budget -= len(data)


_current: ContextVar[FileMemo | None] = ContextVar("demat_file_memo", default=None)


def current_memo() -> FileMemo | None:
    """The memo of the work in progress (``None`` outside ``remembering_files``)."""
    return _current.get()


@contextmanager
def remembering_files(budget: int = BUDGET) -> Iterator[FileMemo]:
    """Keep small files read or written in this context (threads started from it with
    ``asyncio.to_thread`` share it) until the block ends."""
    memo = FileMemo(budget)
    token = _current.set(memo)
    try:
        yield memo
    finally:
        _current.reset(token)

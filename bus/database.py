"""One connection to the bus's PostgreSQL database, shared by a process's threads.

The index (``bus.index``) and the document states (``bus.state``) each hold one. The
schema is migrated (``bus.index_migrations``) once per process before the first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import psycopg

from bus import index_migrations

T = TypeVar("T")
_migrated: set[str] = set()
_migrating = threading.Lock()


def migrate(url: str) -> None:
    """Apply the migrations to ``url`` (once per process and database)."""
    with _migrating:
        if url not in _migrated:
            if index_migrations.current(url) != index_migrations.HEAD:
                index_migrations.upgrade(url)
            _migrated.add(url)


class Database:
    """Thread-safe access to one database (one connection, one lock)."""

    def __init__(self, url: str, *, durable: bool = True) -> None:
        """``durable=False``: commits do not wait for the WAL flush (records that may be
        lost in a server crash without harm, such as the door's receipts)."""
        migrate(url)
        self.url = url
        self.options = "-c TimeZone=UTC" + ("" if durable else " -c synchronous_commit=off")
        self._lock = threading.Lock()
        self._db = self._connect()

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True, options=self.options)

    def run(self, work: Callable[[psycopg.Connection], T]) -> T:
        """``work`` on the connection, reconnecting once if the server dropped it (every
        write is idempotent, so a retried transaction changes nothing twice)."""
        with self._lock:
            if self._db.closed:
                self._db = self._connect()
            try:
                return work(self._db)
            except psycopg.OperationalError:
                if not self._db.broken:
                    raise
                self._db = self._connect()
                return work(self._db)

    def close(self) -> None:
        with self._lock:
            self._db.close()

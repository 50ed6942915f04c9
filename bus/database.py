"""A small pool of connections to the bus's PostgreSQL database, shared by a process's
threads (``psycopg_pool``).

The index (``bus.index``), the document states (``bus.state``), the idempotency keys and
the door's receipts use one. A pool opens one connection and grows to ``size`` only while
threads wait for one (the API's threads run requests side by side: with one connection
they queued behind each other's commits). The schema is migrated
(``bus.index_migrations``) once per process before the first use.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from bus import index_migrations

T = TypeVar("T")
POOL_SIZE = int(os.environ.get("DEMAT_DATABASE_POOL_SIZE", "4"))  # connections at most
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
    """Thread-safe access to one database through a pool of ``size`` connections."""

    def __init__(self, url: str, *, durable: bool = True, size: int = POOL_SIZE) -> None:
        """``durable=False``: commits do not wait for the WAL flush (records that may be
        lost in a server crash without harm, such as the door's receipts)."""
        migrate(url)
        self.url = url
        self.options = "-c TimeZone=UTC" + ("" if durable else " -c synchronous_commit=off")
        self._pool = ConnectionPool(
            url, min_size=1, max_size=max(1, size), open=True, name="demat",
            kwargs={"autocommit": True, "options": self.options})

    def run(self, work: Callable[[psycopg.Connection], T]) -> T:
        """``work`` on a connection of the pool, retried once on a fresh one if the
        server dropped it (every write is idempotent, so a retried transaction changes
        nothing twice)."""
        with self._pool.connection() as db:
            try:
                return work(db)
            except psycopg.OperationalError:
                if not db.broken:
                    raise
        self._pool.check()  # the server may have dropped the idle ones too
        with self._pool.connection() as db:
            return work(db)

    def close(self) -> None:
        self._pool.close()

"""Where personal values must never be in clear: every object of every bucket of the
object store (the Kafka broker keeps its log there too), the object store's and the
database's files on disk, and every table of the bus's database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg

from bus.runtime import Runtime
from bus.settings import Settings

CHUNK = 8 * 1024 * 1024


def leaks(settings: Settings, secrets: list[str]) -> list[str]:
    """Where each of ``secrets`` was found in clear (``where: secret``), none if clean."""
    needles = sorted({s.encode() for s in secrets if len(s) >= 4}, key=len, reverse=True)
    found = []
    for where, data in _places(settings):
        found += [f"{where}: {n.decode()}" for n in needles if n in data]
    return found


def _places(settings: Settings) -> Iterator[tuple[str, bytes]]:
    store = Runtime(settings).store
    for bucket in store.client.list_buckets():
        for obj in store.client.list_objects(bucket.name, recursive=True):
            yield from _chunks(f"s3://{bucket.name}/{obj.object_name}",
                               store.client.get_object(bucket.name, obj.object_name))
    for path in scanned_paths(settings):
        with path.open("rb") as fh:
            yield from _chunks(str(path), fh)
    with psycopg.connect(settings.database) as db:
        tables = [r[0] for r in db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            rows = db.execute(f'SELECT t::text FROM "{table}" t').fetchall()
            yield f"table {table}", "\n".join(r[0] for r in rows).encode()


def _chunks(where: str, stream) -> Iterator[tuple[str, bytes]]:  # type: ignore[no-untyped-def]
    """The stream in overlapping chunks (a value across two chunks is still found)."""
    tail = b""
    try:
        while chunk := stream.read(CHUNK):
            yield where, tail + chunk
            tail = chunk[-256:]
    finally:
        close = getattr(stream, "close", None)
        if close:
            close()


def scanned_paths(settings: Settings) -> list[Path]:
    """The files on disk the scan reads: the object store's and the database's."""
    return sorted(p for folder in ("s3", "pg") for p in (settings.var_dir / folder).rglob("*")
                  if p.is_file())

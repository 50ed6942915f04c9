"""Buckets to a backup folder and back, object by object, bytes as stored.

Encrypted files stay encrypted (their bytes and the ``demat-enc`` metadata saying so
are copied as the store holds them); the keys that open them are not in a backup
(``bus.backup.keys``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from minio import Minio
from minio.commonconfig import GOVERNANCE
from minio.retention import Retention

from bus.audit.store import RETENTION_DAYS
from bus.backup.manifest import CHUNK, Backup, Writer
from bus.objectstore import ENC_FORMAT, ENC_META

META = "x-amz-meta-"


def dump_bucket(client: Minio, bucket: str, writer: Writer, name: str) -> Counter[str]:
    """Copy every object of ``bucket`` under ``objects/<name>/``; count the encrypted
    files per tenant (what the keys metadata must cover)."""
    encrypted: Counter[str] = Counter()
    if not client.bucket_exists(bucket):
        return encrypted
    for obj in client.list_objects(bucket, recursive=True):
        key = obj.object_name
        resp = client.get_object(bucket, key)
        try:
            meta = {k.lower()[len(META):]: v for k, v in resp.headers.items()
                    if k.lower().startswith(META)}
            writer.write_stream(f"objects/{name}/{key}", _chunks(resp), key=key,
                                content_type=resp.headers.get("Content-Type"), metadata=meta)
        finally:
            resp.close()
            resp.release_conn()
        if meta.get(ENC_META) == ENC_FORMAT and key.startswith("files/"):
            encrypted[key.split("/")[1]] += 1
    return encrypted


def _chunks(resp) -> Iterator[bytes]:
    yield from resp.stream(CHUNK)


def object_count(client: Minio, bucket: str) -> int:
    """How many objects ``bucket`` holds (0 if it does not exist); stops at 1."""
    if not client.bucket_exists(bucket):
        return 0
    return next((1 for _ in client.list_objects(bucket, recursive=True)), 0)


def load_bucket(client: Minio, bucket: str, backup: Backup, name: str, *,
                locked: bool = False) -> int:
    """Write back the objects saved under ``objects/<name>/`` (``locked``: under object
    lock, as the journal's are kept); return how many."""
    count = 0
    for item in backup.under(f"objects/{name}/"):
        retention = None
        if locked:
            retention = Retention(GOVERNANCE, datetime.now(UTC) + timedelta(days=RETENTION_DAYS))
        with backup.open(item.path) as fh:
            client.put_object(bucket, item.meta["key"], fh, item.size,
                              content_type=item.meta.get("content_type")
                              or "application/octet-stream",
                              metadata=item.meta.get("metadata") or None, retention=retention)
        count += 1
    return count

"""Where the sealed journal lives: its own bucket, with S3 object lock when the store has it.

Layout (bucket ``<bucket>-journal``):

- ``journal/segments/0000000001.jsonl``: journal events, one JSON per line, as published;
- ``journal/checkpoints/0000000001.json`` (+ ``.sig`` Ed25519, ``.tsr`` RFC 3161 reply);
- ``journal/keys/<key_id>.pem``: the bus's public keys; ``journal/tsa/<sha256>.pem``: TSA CAs.

The bucket is created with object lock (every object then kept in GOVERNANCE
mode for ``RETENTION_DAYS``); a store without object lock (SeaweedFS answers
``NotImplemented``) gets a plain bucket, and ``locked`` says so.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

from minio.commonconfig import GOVERNANCE
from minio.error import S3Error
from minio.retention import Retention

from bus.objectstore import BUCKET_EXISTS, ObjectStore
from bus.settings import Settings

SEGMENTS, CHECKPOINTS = "journal/segments/", "journal/checkpoints/"
KEYS, TSA_CAS = "journal/keys/", "journal/tsa/"
RETENTION_DAYS = 3650


def segment_key(n: int) -> str:
    return f"{SEGMENTS}{n:010d}.jsonl"


def checkpoint_key(k: int, ext: str = "json") -> str:
    return f"{CHECKPOINTS}{k:010d}.{ext}"


def number(key: str) -> int:
    """The sequence number in a segment or checkpoint key."""
    return int(key.rsplit("/", 1)[1].split(".", 1)[0])


class JournalStore:
    """Immutable journal objects in the journal bucket."""

    def __init__(self, settings: Settings, store: ObjectStore | None = None) -> None:
        self.objects = (store or ObjectStore(settings)).bucket_view(f"{settings.bucket}-journal")
        self.client, self.bucket = self.objects.client, self.objects.bucket
        self.locked: bool | None = None

    def ensure(self) -> bool:
        """Create the bucket (object lock if the store supports it); True when locked."""
        if not self.client.bucket_exists(self.bucket):
            try:
                self.client.make_bucket(self.bucket, object_lock=True)
            except S3Error as exc:
                if exc.code not in BUCKET_EXISTS:
                    with contextlib.suppress(S3Error):  # a racing process may have made it
                        self.client.make_bucket(self.bucket)
        self.locked = self._lock_enabled()
        return self.locked

    def _lock_enabled(self) -> bool:
        try:
            config = self.client.get_object_lock_config(self.bucket)
        except (S3Error, ValueError, KeyError):
            return False
        return config is not None

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        until = datetime.now(UTC) + timedelta(days=RETENTION_DAYS)
        self.objects.put_record(key, data, content_type=content_type,
                                retention=Retention(GOVERNANCE, until) if self.locked else None)

    def get(self, key: str, offset: int = 0, length: int = 0) -> bytes | None:
        """An object (``length`` bytes of it from ``offset`` if given), or ``None``."""
        return self.objects.get_record(key, offset, length)

    def keys(self, prefix: str) -> list[str]:
        """Object keys under ``prefix``, sorted."""
        return self.objects.list_keys(prefix)

    def numbered(self, prefix: str, ext: str) -> list[str]:
        return [k for k in self.keys(prefix) if k.endswith("." + ext)]

"""Resumable uploads of large files, in chunks, straight to the object store.

A client opens an upload (tenant, file name, total size), sends the file as chunks, each
at the offset the upload has reached (a chunk re-sent after a lost answer is
recognised and acknowledged, never stored twice), asks where it stands after a broken
connection, and completes it: the file is then stored like any other (content
addressed, encrypted if its flow says so) and the chunks are removed. Chunks and the
upload record live in the object store, so any API node can take the next chunk, and
no node ever holds more than one multipart part of a chunk in memory.
"""

from __future__ import annotations

import hashlib
import io
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from bus.objectstore import PART_SIZE, ObjectStore
from bus.sniff import HEAD_SIZE, sniff
from schemas.envelope import FileRef, FileRole
from schemas.text import check_file_name

MAX_CHUNK = 256 * 1024 * 1024
DEFAULT_TTL = timedelta(days=2)


class UploadError(ValueError):
    """A request the upload cannot take; ``field`` names what is wrong."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class UploadMissing(KeyError):
    """No such upload for this tenant (or it expired)."""


@dataclass
class Part:
    offset: int
    size: int
    sha256: str


@dataclass
class Upload:
    """One upload: what was declared, what arrived, and the file once complete."""

    id: str
    tenant: str
    name: str
    size: int
    created_at: str
    expires_at: str
    owner: str = ""  # who opened it: only they may send to it or use it
    parts: list[Part] = field(default_factory=list)
    file: dict[str, Any] | None = None

    @property
    def received(self) -> int:
        return sum(p.size for p in self.parts)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"received": self.received}


class Uploads:
    """The uploads of the bus, kept in its object store."""

    def __init__(self, store: ObjectStore, *, max_size: int, ttl: timedelta = DEFAULT_TTL
                 ) -> None:
        self.store, self.max_size, self.ttl = store, max_size, ttl

    def start(self, tenant: str, name: str, size: int, *, owner: str = "",
              max_size: int | None = None) -> Upload:
        """Open an upload of ``size`` bytes named ``name`` (for ``owner``); ``max_size``:
        the flow's own limit, when the client named the flow (never above the store's)."""
        try:
            check_file_name(name)
        except ValueError as exc:
            raise UploadError(f"name: {exc}", "name") from None
        limit = min(self.max_size, max_size or self.max_size)
        if not 0 < size <= limit:
            raise UploadError(f"size: between 1 and {limit} bytes", "size")
        now = datetime.now(UTC)
        upload = Upload(id=secrets.token_hex(16), tenant=tenant, name=name, size=size,
                        created_at=now.isoformat(), expires_at=(now + self.ttl).isoformat(),
                        owner=owner)
        self._save(upload)
        return upload

    def get(self, tenant: str, upload_id: str) -> Upload:
        raw = self.store.get_json(_record_key(tenant, upload_id)) if _valid_id(upload_id) \
            else None
        if raw is None:
            raise UploadMissing(upload_id)
        upload = Upload(**{k: v for k, v in raw.items() if k not in ("parts", "received")},
                        parts=[Part(**p) for p in raw.get("parts", [])])
        if datetime.fromisoformat(upload.expires_at) < datetime.now(UTC):
            raise UploadMissing(upload_id)
        return upload

    def append(self, tenant: str, upload_id: str, offset: int, body: IO[bytes], length: int
               ) -> Upload:
        """Store the chunk of ``length`` bytes read from ``body`` at ``offset``."""
        upload = self.get(tenant, upload_id)
        if upload.file is not None:
            raise UploadError("the upload is complete", "upload")
        resent = next((p for p in upload.parts if p.offset == offset), None)
        if resent is not None and resent.size == length:
            return upload  # the answer to this chunk was lost: it is already here
        if offset != upload.received:
            raise UploadError(f"offset: the upload has {upload.received} bytes, not {offset}",
                              "offset")
        if not 0 < length <= MAX_CHUNK or offset + length > upload.size:
            raise UploadError(f"length: 1 to {MAX_CHUNK} bytes, within the declared size "
                              f"{upload.size}", "length")
        reader = _Counting(body)
        try:
            self.store.client.put_object(self.store.bucket,
                                         _part_key(tenant, upload_id, offset), reader,
                                         length=length, part_size=PART_SIZE,
                                         num_parallel_uploads=1)
        except OSError:
            if reader.size >= length:
                raise  # the store failed, not the request
        if reader.size != length:
            raise UploadError(f"length: {reader.size} bytes arrived, {length} announced",
                              "length")
        upload.parts.append(Part(offset, length, reader.digest.hexdigest()))
        self._save(upload)
        return upload

    def complete(self, tenant: str, upload_id: str, *, role: FileRole = FileRole.MAIN,
                 encrypt: bool = False) -> FileRef:
        """Store the whole file (read back from its chunks) and drop the chunks."""
        upload = self.get(tenant, upload_id)
        if upload.file is not None:
            return FileRef.model_validate(upload.file)
        if upload.received != upload.size:
            raise UploadError(f"size: {upload.received} of {upload.size} bytes received",
                              "size")
        digest, head = hashlib.sha256(), b""
        with self._joined(upload) as joined:
            while chunk := joined.read(PART_SIZE):
                head = head or chunk[:HEAD_SIZE]
                digest.update(chunk)
        ref = FileRef(sha256=digest.hexdigest(), size=upload.size, media_type=sniff(head),
                      role=role, name=upload.name)
        with self._joined(upload) as joined:
            self.store.put_stream(tenant, ref, joined, encrypt=encrypt)
        upload.file = ref.model_dump(mode="json")
        self._save(upload)
        for part in upload.parts:
            self.store.client.remove_object(self.store.bucket,
                                            _part_key(tenant, upload_id, part.offset))
        return ref

    def _joined(self, upload: Upload) -> _Joined:
        return _Joined(self.store, [_part_key(upload.tenant, upload.id, p.offset)
                                    for p in sorted(upload.parts, key=lambda p: p.offset)])

    def _save(self, upload: Upload) -> None:
        self.store.put_json(_record_key(upload.tenant, upload.id), upload.as_dict())


def _valid_id(upload_id: str) -> bool:
    return len(upload_id) == 32 and all(c in "0123456789abcdef" for c in upload_id)


def _record_key(tenant: str, upload_id: str) -> str:
    return f"uploads/{tenant}/{upload_id}.json"


def _part_key(tenant: str, upload_id: str, offset: int) -> str:
    return f"uploads/{tenant}/{upload_id}/{offset:016d}"


class _Counting(io.RawIOBase):
    """Hands out what it reads from ``raw``, counting and hashing it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.size, self.digest = raw, 0, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.size += len(data)
        self.digest.update(data)
        return data


class _Joined(io.RawIOBase):
    """The chunks of an upload read one after the other, streamed from the store."""

    def __init__(self, store: ObjectStore, keys: list[str]) -> None:
        self.store, self.keys, self.current = store, list(keys), None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while self.keys or self.current is not None:
            if self.current is None:
                self.current = self.store.client.get_object(self.store.bucket,
                                                            self.keys.pop(0))
            data = self.current.read(size if size and size > 0 else PART_SIZE)
            if data:
                return data
            self._release()
        return b""

    def _release(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current.release_conn()
            self.current = None

    def __enter__(self) -> _Joined:
        return self

    def __exit__(self, *exc: object) -> None:
        self._release()

"""Content-addressed object store on S3 (MinIO client).

Files are stored per tenant under their SHA-256; they are streamed in chunks
(a large file is never held whole in memory) and their digest is checked on
write and on read.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import urllib3
from minio import Minio
from minio.error import S3Error
from minio.retention import Retention

from bus.crypto import EncryptingReader, Keyring
from bus.filememo import FileMemo, current_memo
from bus.settings import Settings
from bus.sniff import HEAD_SIZE, sniff
from connectors.frames import (
    HEADER_SIZE,
    DecryptionError,
    encrypted_size,
    open_frames,
    read_chunks,
)
from schemas.envelope import FileRef, FileRole

CHUNK = 1024 * 1024
BUCKET_EXISTS = ("BucketAlreadyOwnedByYou", "BucketAlreadyExists")
MISSING = ("NoSuchKey", "NoSuchObject", "NotFound")  # S3 codes of an absent object
PART_SIZE = 8 * 1024 * 1024  # multipart uploads hold one part in memory at a time
SMALL_FILE = 1024 * 1024  # put_bytes writes files up to this size without asking first
ENC_META = "demat-enc"  # user metadata of an encrypted object: its format
PLAIN_META = "demat-plain-size"  # ... and its plaintext size
ENC_FORMAT = "aes-256-gcm-frames-v1"


class IntegrityError(Exception):
    """Stored content does not match its declared digest."""


class ObjectMissing(KeyError):
    """No object under that key."""


class _HashingReader(io.RawIOBase):
    """A reader that hashes what it hands out (used to verify an upload on the fly)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data


def file_digest(path: Path) -> tuple[str, int, bytes]:
    """SHA-256, size and first bytes of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    with path.open("rb") as fh:
        for chunk in read_chunks(fh, CHUNK):
            if not head:
                head = chunk[:HEAD_SIZE]
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size, head


def _http_pool(connections: int) -> urllib3.PoolManager:
    """A connection pool as large as the threads that use it (MinIO's default has 10)."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=10, read=300), maxsize=connections,
        retries=urllib3.Retry(total=5, backoff_factor=0.2,
                              status_forcelist=[500, 502, 503, 504]))


class ObjectStore:
    """Files, artefacts and small JSON records of the bus in one S3 bucket.

    Files may be stored encrypted (``encrypt=True``, decided per flow by its
    ``encrypt_files``): AES-256-GCM envelope encryption with a per-object data key
    wrapped by the tenant's key (see ``bus.crypto``). Keys stay the plaintext
    SHA-256; readers decrypt transparently and still verify that digest.
    """

    def __init__(self, settings: Settings) -> None:
        self.bucket = settings.bucket
        access_key, secret_key = settings.s3_keys
        self.client = Minio(
            settings.s3,
            access_key=access_key,
            secret_key=secret_key,
            secure=settings.s3_secure,
            region=settings.s3_region,
            http_client=_http_pool(settings.io_threads),
        )
        self.keyring = Keyring(settings.var_dir, getattr(settings, "kek_file", None))
        self._absent = MISSING

    def bucket_view(self, name: str) -> ObjectStore:
        """This store on bucket ``name``: same client, same record get/put/missing rules;
        a bucket not made yet reads as empty (its records missing, its listings empty)."""
        view = copy.copy(self)
        view.bucket, view._absent = name, (*MISSING, "NoSuchBucket")
        return view

    def ensure_bucket(self) -> None:
        """Create the bucket if needed (bus processes starting together race for it)."""
        if self.client.bucket_exists(self.bucket):
            return
        try:
            self.client.make_bucket(self.bucket)
        except S3Error as exc:
            if exc.code not in BUCKET_EXISTS:
                raise

    # --- files ----------------------------------------------------------------

    @staticmethod
    def file_key(tenant: str, sha256: str) -> str:
        return f"files/{tenant}/{sha256[:2]}/{sha256}"

    def stat_file(self, tenant: str, sha256: str) -> int | None:
        """Size of a stored file (plaintext size), or ``None`` if the store does not have it."""
        found = self._stat(tenant, sha256)
        return None if found is None else found[0]

    def is_encrypted(self, tenant: str, sha256: str) -> bool | None:
        """Whether a stored file is encrypted at rest (``None``: not stored)."""
        found = self._stat(tenant, sha256)
        return None if found is None else found[1]

    def _stat(self, tenant: str, sha256: str) -> tuple[int, bool] | None:
        try:
            obj = self.client.stat_object(self.bucket, self.file_key(tenant, sha256))
        except S3Error as exc:
            if exc.code in MISSING:
                return None
            raise
        meta = {k.lower(): v for k, v in (obj.metadata or {}).items()}
        if meta.get(f"x-amz-meta-{ENC_META}") == ENC_FORMAT:
            return int(meta[f"x-amz-meta-{PLAIN_META}"]), True
        return obj.size, False

    def _needs_upload(self, tenant: str, sha256: str, size: int, encrypt: bool) -> bool:
        """Absent, wrong size, or stored in clear while it must be encrypted."""
        found = self._stat(tenant, sha256)
        return found is None or found[0] != size or (encrypt and not found[1])

    def put_path(
        self, tenant: str, path: Path, *, role: FileRole = FileRole.MAIN,
        name: str | None = None, expected_sha256: str | None = None, encrypt: bool = False,
    ) -> FileRef:
        """Store a local file (streamed); the digest is checked against the content."""
        sha, size, head = file_digest(path)
        if expected_sha256 is not None and expected_sha256.lower() != sha:
            raise IntegrityError(
                f"{path}: declared sha256 {expected_sha256} does not match content {sha}"
            )
        ref = FileRef(sha256=sha, size=size, media_type=sniff(head), role=role,
                      name=name or path.name)
        if size <= SMALL_FILE:  # one call, as put_bytes: written blind, encrypted
            self._put_small(tenant, ref, path.read_bytes())
        elif self._needs_upload(tenant, sha, size, encrypt):
            with path.open("rb") as fh:
                self._upload(tenant, ref, fh, encrypt)
        return ref

    def put_bytes(
        self, tenant: str, data: bytes, *, name: str, role: FileRole = FileRole.MAIN,
        media_type: str | None = None, encrypt: bool = False, unique: bool = False,
    ) -> FileRef:
        """Store a small in-memory file (artefacts, generated messages, small uploads).

        A file of at most ``SMALL_FILE`` bytes is written without asking the store
        whether it has it (one call, not two), and encrypted whatever ``encrypt`` says:
        rewriting it can then never turn an encrypted copy (of a flow that encrypts)
        into a clear one. ``unique``: the content is specific to one document (it names
        it, or carries a fresh signature), so no other document can have stored it: it
        is written at once, encrypted as ``encrypt`` says, whatever its size.
        """
        sha = hashlib.sha256(data).hexdigest()
        ref = FileRef(sha256=sha, size=len(data), media_type=media_type or sniff(data[:HEAD_SIZE]),
                      role=role, name=name)
        if not unique and len(data) <= SMALL_FILE:
            self._put_small(tenant, ref, data)
        elif unique or self._needs_upload(tenant, sha, len(data), encrypt):
            self._upload(tenant, ref, io.BytesIO(data), encrypt)
            self._remember(tenant, ref, data)
        return ref

    def _put_small(self, tenant: str, ref: FileRef, data: bytes) -> None:
        """Write a small file without asking first, always encrypted (see ``put_bytes``);
        the digest in ``ref`` must be that of ``data``."""
        self._upload(tenant, ref, io.BytesIO(data), encrypt=True)
        self._remember(tenant, ref, data)

    def _remember(self, tenant: str, ref: FileRef, data: bytes,
                  memo: FileMemo | None = None) -> None:
        memo = memo or current_memo()
        if memo is not None and len(data) <= SMALL_FILE:
            memo.keep((self.bucket, tenant, ref.sha256), data)

    def put_stream(self, tenant: str, ref: FileRef, stream: IO[bytes], *,
                   encrypt: bool = False) -> FileRef:
        """Store ``stream`` as the file ``ref`` describes (digest known beforehand: a
        resumable upload's chunks), unless the store holds it already."""
        if self._needs_upload(tenant, ref.sha256, ref.size, encrypt):
            self._upload(tenant, ref, stream, encrypt)
        return ref

    def _upload(self, tenant: str, ref: FileRef, stream: IO[bytes], encrypt: bool = False
                ) -> None:
        key = self.file_key(tenant, ref.sha256)
        reader = _HashingReader(stream)
        body: IO[bytes] = reader
        length, metadata, media_type = ref.size, None, ref.media_type
        if encrypt:
            dek, header = self.keyring.new_header(tenant, ref.sha256)
            body = EncryptingReader(reader, ref.size, dek, header)
            length, media_type = encrypted_size(ref.size), "application/octet-stream"
            metadata = {ENC_META: ENC_FORMAT, PLAIN_META: str(ref.size)}
        self.client.put_object(
            self.bucket, key, body, length=length, part_size=PART_SIZE,
            num_parallel_uploads=1, content_type=media_type, metadata=metadata,
        )
        if reader.digest.hexdigest() != ref.sha256 or reader.size != ref.size:
            self.client.remove_object(self.bucket, key)
            raise IntegrityError(f"{ref.name}: content changed while it was uploaded")

    def iter_file(self, tenant: str, ref: FileRef) -> Iterator[bytes]:
        """Stream a stored file in chunks; raise ``IntegrityError`` at the end on mismatch.
        Inside ``remembering_files``, a small file already read or written comes from
        memory (it was verified against the same digest)."""
        memo = current_memo()
        kept = memo.get((self.bucket, tenant, ref.sha256)) if memo is not None else None
        if kept is not None:
            return iter([kept[i:i + CHUNK] for i in range(0, len(kept), CHUNK)] or [b""])
        return self._stream_file(tenant, ref, memo)

    def _stream_file(self, tenant: str, ref: FileRef, memo: FileMemo | None
                     ) -> Iterator[bytes]:
        try:
            resp = self.client.get_object(self.bucket, self.file_key(tenant, ref.sha256))
        except S3Error as exc:
            raise ObjectMissing(f"{ref.name}: no object {ref.sha256} for tenant {tenant}") from exc
        digest, chunks = hashlib.sha256(), []
        keep = memo is not None and ref.size <= SMALL_FILE
        try:
            for chunk in self._plain_chunks(tenant, ref, resp):
                digest.update(chunk)
                if keep:
                    chunks.append(chunk)
                yield chunk
        finally:
            resp.close()
            resp.release_conn()
        if digest.hexdigest() != ref.sha256:
            raise IntegrityError(
                f"{ref.name}: stored object for tenant {tenant} does not match sha256 {ref.sha256}"
            )
        if keep:
            self._remember(tenant, ref, b"".join(chunks), memo)

    def _plain_chunks(self, tenant: str, ref: FileRef, resp: Any) -> Iterator[bytes]:
        if resp.headers.get(f"x-amz-meta-{ENC_META}") != ENC_FORMAT:
            yield from resp.stream(CHUNK)
            return
        try:
            sealer = self.keyring.open_header(tenant, ref.sha256, resp.read(HEADER_SIZE))
            yield from open_frames(sealer, resp)
        except DecryptionError as exc:
            raise IntegrityError(f"{ref.name}: encrypted object for tenant {tenant}: {exc}"
                                 ) from None

    def read_file(self, tenant: str, ref: FileRef) -> bytes:
        """A stored file, whole and verified (for small files)."""
        return b"".join(self.iter_file(tenant, ref))

    def save_file(self, tenant: str, ref: FileRef, dest: Path) -> None:
        """Write a stored file to ``dest``, verified, without holding it in memory."""
        tmp = dest.with_name(dest.name + ".part")
        with tmp.open("wb") as fh:
            for chunk in self.iter_file(tenant, ref):
                fh.write(chunk)
        tmp.replace(dest)

    # --- small JSON records ---------------------------------------------------

    def put_json(self, key: str, value: Any) -> None:
        self.put_record(key, json.dumps(value, default=str, separators=(",", ":")).encode())

    def put_record(self, key: str, data: bytes, *, content_type: str = "application/json",
                   retention: Retention | None = None) -> None:
        """Store an already serialised record (JSON unless ``content_type`` says otherwise;
        ``retention``: S3 object lock on it)."""
        self.client.put_object(self.bucket, key, io.BytesIO(data), len(data),
                               content_type=content_type, retention=retention)

    def list_keys(self, prefix: str) -> list[str]:
        """Keys of the records under ``prefix`` (sorted)."""
        try:
            return sorted(o.object_name for o in self.client.list_objects(
                self.bucket, prefix=prefix, recursive=True))
        except S3Error as exc:
            if exc.code in self._absent:
                return []
            raise

    def list_times(self, prefix: str, after: str | None = None) -> dict[str, float]:
        """Keys under ``prefix`` (those sorting after ``after`` only, if given) with their
        last-modified time (epoch seconds), one listing."""
        try:
            return {o.object_name: o.last_modified.timestamp() if o.last_modified else 0.0
                    for o in self.client.list_objects(self.bucket, prefix=prefix,
                                                      recursive=True, start_after=after)}
        except S3Error as exc:
            if exc.code in self._absent:
                return {}
            raise

    def delete_record(self, key: str) -> None:
        """Remove a record (nothing happens if there is none)."""
        self.client.remove_object(self.bucket, key)

    def get_json(self, key: str) -> Any | None:
        raw = self.get_record(key)
        return None if raw is None else json.loads(raw)

    def get_record(self, key: str, offset: int = 0, length: int = 0) -> bytes | None:
        """The raw bytes of a record (``length`` bytes from ``offset`` if given), or
        ``None`` if there is none."""
        try:
            resp = self.client.get_object(self.bucket, key, offset=offset, length=length)
        except S3Error as exc:
            if exc.code in self._absent:
                return None
            raise
        try:
            return resp.read()
        finally:
            resp.close()
            resp.release_conn()

"""Envelope encryption of files at rest (AES-256-GCM, chunked framing) and tenant keys.

Format of an encrypted object (all integers big-endian)::

    header  = MAGIC (8) | kek_id (8) | wrap_nonce (12) | wrapped_dek (48) | frame_size (4)
    frame_i = AES-256-GCM(dek, nonce = nonce_i, aad = header_digest | i (8) | final (1))

Every file gets its own random 256-bit data key (DEK), wrapped by the tenant's
key-encryption key (KEK) with AES-GCM, the wrap bound to tenant and plaintext
digest. The plaintext is cut in frames of ``frame_size`` bytes (the last one
shorter, possibly empty); each frame has its own nonce and tag, and its index and
a "final" flag are authenticated (``connectors.frames``), so frames cannot be
reordered, dropped or the file truncated without the reader noticing. Nothing is
ever held whole in memory.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connectors.frames import (
    FRAME,
    HEADER,
    HEADER_SIZE,
    MAGIC,
    DecryptionError,
    FrameSealer,
    encrypted_size,
    frames_of,
    seal_frames,
)
from connectors.private import private_dir

__all__ = ["DecryptionError", "EncryptingReader", "Keyring", "encrypted_size"]

class Keyring:
    """Per-tenant key-encryption keys.

    Keys come from a JSON file ``{"<siren>": "<base64 32 bytes>", ...}`` (production:
    mounted from a secret store, ``DEMAT_KEK_FILE``); tenants absent from it get a key
    generated once under ``<var>/keys/`` (embedded demo), created atomically so
    concurrent processes agree on it.
    """

    def __init__(self, var_dir: Path, kek_file: Path | None = None) -> None:
        self.dir = var_dir / "keys"
        self._keys: dict[str, bytes] = {}
        if kek_file is not None:
            raw = json.loads(Path(kek_file).read_text())
            for tenant, b64 in raw.items():
                key = base64.b64decode(b64)
                if len(key) != 32:
                    raise ValueError(f"KEK file {kek_file}: key of tenant {tenant} is not "
                                     "256 bits")
                self._keys[tenant] = key

    def has_key(self, tenant: str) -> bool:
        """Whether the tenant's key exists (configured or under ``<var>/keys/``), without
        making one."""
        return tenant in self._keys or (self.dir / f"{tenant}.kek").exists()

    def source(self, tenant: str) -> str:
        """Where the tenant's key comes from (no key material)."""
        return "DEMAT_KEK_FILE" if tenant in self._keys else str(self.dir / f"{tenant}.kek")

    def kek(self, tenant: str) -> bytes:
        key = self._keys.get(tenant)
        if key is None:
            key = self._keys[tenant] = self._local_key(tenant)
        return key

    def kek_id(self, tenant: str) -> bytes:
        return hashlib.sha256(b"kek-id" + self.kek(tenant)).digest()[:8]

    def derived(self, tenant: str, purpose: str) -> bytes:
        """A 256-bit key for ``purpose`` derived from the tenant's KEK (e.g. keyed hashes)."""
        return hashlib.sha256(self.kek(tenant) + b"\0" + purpose.encode()).digest()

    def seal_json(self, tenant: str, purpose: str, aad: str, value: Any) -> str:
        """``value`` as JSON, AES-256-GCM sealed under the key ``derived(tenant, purpose)``
        with ``aad`` bound (base64 of nonce and ciphertext)."""
        nonce = os.urandom(12)
        box = AESGCM(self.derived(tenant, purpose))
        return base64.b64encode(nonce + box.encrypt(nonce, json.dumps(value).encode(),
                                                    aad.encode())).decode()

    def open_json(self, tenant: str, purpose: str, aad: str, sealed: str) -> Any:
        """What ``seal_json`` sealed (``InvalidTag`` under another key or ``aad``)."""
        raw = base64.b64decode(sealed)
        box = AESGCM(self.derived(tenant, purpose))
        return json.loads(box.decrypt(raw[:12], raw[12:], aad.encode()))

    def _local_key(self, tenant: str) -> bytes:
        path = self.dir / f"{tenant}.kek"
        if not path.exists():
            private_dir(self.dir)
            tmp = self.dir / f".{tenant}.{os.getpid()}.{os.urandom(6).hex()}.tmp"  # per call
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(base64.b64encode(os.urandom(32)))
            try:
                os.link(tmp, path)  # atomic: fails if another process created it first
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        key = base64.b64decode(path.read_bytes())
        if len(key) != 32:
            raise ValueError(f"key file {path} does not hold a 256-bit key")
        return key

    # --- objects --------------------------------------------------------------

    def new_header(self, tenant: str, sha256: str) -> tuple[bytes, bytes]:
        """A fresh data key and the object header carrying it wrapped by the tenant KEK."""
        dek, nonce = os.urandom(32), os.urandom(12)
        wrapped = AESGCM(self.kek(tenant)).encrypt(nonce, dek, _wrap_aad(tenant, sha256))
        return dek, HEADER.pack(MAGIC, self.kek_id(tenant), nonce, wrapped, FRAME)

    def open_header(self, tenant: str, sha256: str, header: bytes) -> FrameSealer:
        """The frame decrypter of an object whose header is ``header``."""
        if len(header) != HEADER_SIZE:
            raise DecryptionError("encrypted object is shorter than its header")
        magic, kek_id, nonce, wrapped, frame = HEADER.unpack(header)
        if magic != MAGIC:
            raise DecryptionError("not an encrypted object (bad magic)")
        if kek_id != self.kek_id(tenant):
            raise DecryptionError(f"object was encrypted under another key than tenant "
                                  f"{tenant}'s current KEK")
        try:
            dek = AESGCM(self.kek(tenant)).decrypt(nonce, wrapped, _wrap_aad(tenant, sha256))
        except InvalidTag:
            raise DecryptionError("data key does not unwrap (wrong tenant or object)") from None
        return FrameSealer(dek, header, frame)


def _wrap_aad(tenant: str, sha256: str) -> bytes:
    return f"demat-dek:{tenant}:{sha256}".encode()


class EncryptingReader(io.RawIOBase):
    """A readable stream of the encrypted object of ``size`` plaintext bytes from ``raw``."""

    def __init__(self, raw: IO[bytes], size: int, dek: bytes, header: bytes) -> None:
        self._frames = seal_frames(FrameSealer(dek, header), frames_of(raw, size))
        self._buf = bytearray(header)
        self.length = encrypted_size(size)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buf) < size:
            frame = next(self._frames, None)
            if frame is None:
                break
            self._buf += frame
        if size < 0:
            size = len(self._buf)
        out = bytes(self._buf[:size])
        del self._buf[:size]
        return out

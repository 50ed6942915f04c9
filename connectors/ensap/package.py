"""Encrypted transfer package of an ENSAP batch.

Choice (documented in README): the batch is a ZIP (envelope XML + one PDF per
entry) encrypted with AES-256-GCM under a fresh data key, framed in chunks exactly
like files at rest (``connectors.frames``: per-frame nonce and tag, authenticated index
and final flag), the data key wrapped with RSA-OAEP (SHA-256) to ENSAP's
certificate. The package travels as the HTTP body; the wrapped key, recipient
certificate fingerprint and ZIP digest travel as headers.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from typing import IO

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from connectors.frames import FrameSealer, frames_of, open_frames, read_chunks, seal_frames

KEY_TRANSPORT = "RSA-OAEP-256"
OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
SPOOL = 8 * 1024 * 1024


class PackageError(ValueError):
    """A package that cannot be opened (wrong recipient, corrupt, tampered)."""


def cert_fingerprint(cert: x509.Certificate) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def _sealer(dek: bytes, wrapped: bytes, zip_sha256: str) -> FrameSealer:
    return FrameSealer(dek, b"ENSAP-PKG-1|" + wrapped + zip_sha256.encode())


def build_zip(members: Iterable[tuple[str, Iterable[bytes]]]) -> tuple[IO[bytes], str, int]:
    """ZIP of ``members`` (name, chunks) in a spooled file; its digest and size."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL)  # noqa: SIM115 (returned)
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, chunks in members:
            with zf.open(name, "w", force_zip64=True) as dest:
                for chunk in chunks:
                    dest.write(chunk)
    size = spool.tell()
    spool.seek(0)
    digest = hashlib.sha256()
    for chunk in read_chunks(spool):
        digest.update(chunk)
    spool.seek(0)
    return spool, digest.hexdigest(), size


def seal_package(cert: x509.Certificate, zipped: IO[bytes], zip_sha256: str, size: int
                 ) -> tuple[dict[str, str], Iterator[bytes]]:
    """Headers and encrypted body frames of a ZIP for the holder of ``cert``."""
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise PackageError("the ENSAP certificate must carry an RSA key")
    dek = os.urandom(32)
    wrapped = public.encrypt(dek, OAEP)
    headers = {"X-Ensap-Key-Transport": KEY_TRANSPORT,
               "X-Ensap-Wrapped-Key": base64.b64encode(wrapped).decode(),
               "X-Ensap-Recipient": cert_fingerprint(cert),
               "X-Ensap-Package-Sha256": zip_sha256,
               "Content-Type": "application/octet-stream"}
    return headers, seal_frames(_sealer(dek, wrapped, zip_sha256), frames_of(zipped, size))


def open_package(key: rsa.RSAPrivateKey, headers: dict[str, str], body: bytes) -> bytes:
    """The ZIP inside a package (what ENSAP does on reception); ``PackageError`` if bad."""
    if headers.get("x-ensap-key-transport") != KEY_TRANSPORT:
        raise PackageError(f"key transport must be {KEY_TRANSPORT}")
    try:
        wrapped = base64.b64decode(headers["x-ensap-wrapped-key"])
        zip_sha = headers["x-ensap-package-sha256"]
        dek = key.decrypt(wrapped, OAEP)
        data = b"".join(open_frames(_sealer(dek, wrapped, zip_sha), io.BytesIO(body)))
    except (KeyError, ValueError) as exc:
        raise PackageError(f"package does not open: {exc}") from None
    except Exception as exc:  # DecryptionError and friends
        raise PackageError(f"package does not decrypt: {exc}") from None
    if hashlib.sha256(data).hexdigest() != zip_sha:
        raise PackageError("package digest does not match its content")
    return data

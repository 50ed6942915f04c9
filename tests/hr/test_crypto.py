"""Chunked AES-256-GCM envelope encryption: round trips, tampering, keys."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from bus.crypto import DecryptionError, EncryptingReader, Keyring, encrypted_size
from connectors import frames
from connectors.frames import open_frames

TENANT = "216900910"


def _encrypt(keyring: Keyring, data: bytes, tenant: str = TENANT) -> tuple[bytes, str]:
    sha = hashlib.sha256(data).hexdigest()
    dek, header = keyring.new_header(tenant, sha)
    reader = EncryptingReader(io.BytesIO(data), len(data), dek, header)
    out = bytearray()
    while chunk := reader.read(100_000):
        out += chunk
    assert len(out) == encrypted_size(len(data))
    return bytes(out), sha


def _decrypt(keyring: Keyring, blob: bytes, sha: str, tenant: str = TENANT) -> bytes:
    stream = io.BytesIO(blob)
    sealer = keyring.open_header(tenant, sha, stream.read(frames.HEADER_SIZE))
    return b"".join(open_frames(sealer, stream))


@pytest.mark.parametrize("size", [0, 1, frames.FRAME, 2 * frames.FRAME + 7])
def test_round_trip_without_plaintext_in_ciphertext(tmp_path: Path, size: int) -> None:
    keyring = Keyring(tmp_path)
    data = (b"NIR 187019403508878 " * (size // 20 + 1))[:size]
    blob, sha = _encrypt(keyring, data)
    assert _decrypt(keyring, blob, sha) == data
    if size > 20:
        assert b"187019403508878" not in blob


def test_truncation_reordering_and_tampering_are_detected(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path)
    data = os.urandom(3 * frames.FRAME)
    blob, sha = _encrypt(keyring, data)
    frame = frames.FRAME + frames.TAG
    h = frames.HEADER_SIZE
    truncated = blob[:h + 2 * frame]
    swapped = blob[:h] + blob[h + frame:h + 2 * frame] + blob[h:h + frame] + blob[h + 2 * frame:]
    flipped = bytearray(blob)
    flipped[h + 5] ^= 1
    for bad in (truncated, swapped, bytes(flipped)):
        with pytest.raises(DecryptionError):
            _decrypt(keyring, bad, sha)


def test_keys_are_per_tenant_and_shared_by_processes(tmp_path: Path) -> None:
    first, second = Keyring(tmp_path), Keyring(tmp_path)
    blob, sha = _encrypt(first, b"bulletin de paie")
    assert _decrypt(second, blob, sha) == b"bulletin de paie"  # same key file
    with pytest.raises(DecryptionError, match="another key"):
        _decrypt(first, blob, sha, tenant="214502494")
    assert (tmp_path / "keys" / f"{TENANT}.kek").stat().st_mode & 0o077 == 0


def test_configured_kek_file(tmp_path: Path) -> None:
    import base64
    import json

    path = tmp_path / "keks.json"
    path.write_text(json.dumps({TENANT: base64.b64encode(b"k" * 32).decode()}))
    keyring = Keyring(tmp_path / "var", path)
    assert keyring.kek(TENANT) == b"k" * 32
    path.write_text(json.dumps({TENANT: base64.b64encode(b"short").decode()}))
    with pytest.raises(ValueError, match="256 bits"):
        Keyring(tmp_path, path)

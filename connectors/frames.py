"""Byte streams in pieces: authenticated frames (AES-256-GCM) that files at rest
(``bus.crypto``) and encrypted transfer packages (``connectors.ensap.package``) share,
and the chunk readers every streaming client and simulator uses.

A stream is cut in frames of ``frame_size`` bytes (the last one shorter, possibly
empty); each frame has its own nonce and tag, and its index and a "final" flag are
authenticated, so frames cannot be reordered, dropped or the stream truncated
without the reader noticing.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import struct
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"DMTAEAD1"
FRAME = 1024 * 1024
TAG = 16
HEADER = struct.Struct(">8s8s12s48sI")
HEADER_SIZE = HEADER.size  # 80
CHUNK = 1024 * 1024  # what chunked readers read at a time


class DecryptionError(Exception):
    """An encrypted object is corrupt, truncated or not for this key."""


def encrypted_size(plain_size: int, frame: int = FRAME) -> int:
    """Size of the encrypted object of a ``plain_size``-byte file."""
    frames = max(1, -(-plain_size // frame))
    return HEADER_SIZE + plain_size + TAG * frames


def _frame_nonce(base: bytes, index: int) -> bytes:
    return base[:4] + struct.pack(">Q", index)


def frame_aad(header_digest: bytes, index: int, final: bool) -> bytes:
    return header_digest + struct.pack(">Q?", index, final)


class FrameSealer:
    """Encrypts a plaintext stream frame by frame under one data key."""

    def __init__(self, dek: bytes, header: bytes, frame: int = FRAME) -> None:
        self.aead = AESGCM(dek)
        self.header_digest = hashlib.sha256(header).digest()
        self.nonce_base = hashlib.sha256(b"nonce" + header).digest()[:4]
        self.frame = frame

    def seal(self, index: int, plain: bytes, final: bool) -> bytes:
        return self.aead.encrypt(_frame_nonce(self.nonce_base, index), plain,
                                 frame_aad(self.header_digest, index, final))

    def open(self, index: int, sealed: bytes, final: bool) -> bytes:
        try:
            return self.aead.decrypt(_frame_nonce(self.nonce_base, index), sealed,
                                     frame_aad(self.header_digest, index, final))
        except InvalidTag:
            raise DecryptionError(f"frame {index} fails authentication (corrupt, "
                                  "reordered or truncated object)") from None


def frames_of(stream: IO[bytes], size: int, frame: int = FRAME) -> Iterator[bytes]:
    """Read exactly ``size`` bytes of ``stream`` in frames (one empty frame if ``size`` is 0)."""
    for i in range(max(1, -(-size // frame))):
        want = min(frame, size - i * frame)
        buf = _read_exact(stream, want)
        if len(buf) != want:
            raise ValueError(f"stream ended {size - i * frame - len(buf)} bytes early")
        yield buf


def seal_frames(sealer: FrameSealer, plain_frames: Iterable[bytes]) -> Iterator[bytes]:
    """Encrypted frames of ``plain_frames``; the last one is flagged final."""
    it = iter(plain_frames)
    current = next(it, b"")
    index = 0
    for nxt in it:
        yield sealer.seal(index, current, final=False)
        current, index = nxt, index + 1
    yield sealer.seal(index, current, final=True)


def open_frames(sealer: FrameSealer, stream: IO[bytes]) -> Iterator[bytes]:
    """Decrypt frames read from ``stream`` (after its header) until the final one."""
    size = sealer.frame + TAG
    current = _read_exact(stream, size)
    index = 0
    while True:
        nxt = _read_exact(stream, size)
        final = not nxt
        if len(current) < TAG:
            raise DecryptionError(f"frame {index} is truncated")
        yield sealer.open(index, current, final)
        if final:
            return
        if len(current) != size:
            raise DecryptionError(f"frame {index} is short but not the last one")
        current, index = nxt, index + 1


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    parts, left = [], size
    while left > 0:
        chunk = stream.read(left)
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def read_chunks(stream: IO[bytes] | io.RawIOBase, size: int = CHUNK) -> Iterator[bytes]:
    """The rest of ``stream`` in chunks of at most ``size`` bytes."""
    while chunk := stream.read(size):
        yield chunk


async def aiter_chunks(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    """Read a blocking chunk iterator from a thread, one chunk at a time."""
    it: Iterator[bytes] = iter(chunks)
    sentinel = b""
    while True:
        chunk = await asyncio.to_thread(next, it, sentinel)
        if chunk is sentinel:
            return
        yield chunk

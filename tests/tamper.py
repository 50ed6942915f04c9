"""Flip one bit of a stored object and put it back as it was (metadata included: an
encrypted file restored without its metadata would read as altered)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

META = "x-amz-meta-"


@dataclass(frozen=True)
class Original:
    """An object's content and user metadata before it was flipped."""

    data: bytes
    metadata: dict[str, str]


def flip(client: Any, bucket: str, key: str, at: int | None = None) -> Original:
    """Flip one bit of byte ``at`` (modulo the size; the middle one if ``None``) of an
    object; its metadata is kept."""
    resp = client.get_object(bucket, key)
    try:
        data = resp.read()
        metadata = {k[len(META):]: v for k, v in resp.headers.items()
                    if k.lower().startswith(META)}
    finally:
        resp.close()
        resp.release_conn()
    flipped = bytearray(data)
    flipped[(len(flipped) // 2 if at is None else at) % len(flipped)] ^= 0x01
    client.put_object(bucket, key, io.BytesIO(bytes(flipped)), len(flipped), metadata=metadata)
    return Original(data, metadata)


def restore(client: Any, bucket: str, key: str, original: Original) -> None:
    client.put_object(bucket, key, io.BytesIO(original.data), len(original.data),
                      metadata=original.metadata)

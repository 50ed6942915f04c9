"""Time-ordered identifiers (UUID version 7, RFC 9562)."""

from __future__ import annotations

import os
import time
import uuid


def new_id(now_ms: int | None = None) -> str:
    """Return a UUIDv7 string: 48-bit Unix milliseconds then 74 random bits.

    Identifiers created later sort after earlier ones (to the millisecond).
    """
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b
    return str(uuid.UUID(int=value))


def id_timestamp_ms(doc_id: str) -> int:
    """Milliseconds since the epoch encoded in a UUIDv7 string."""
    return uuid.UUID(doc_id).int >> 80

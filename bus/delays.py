"""Delay topics: messages that must wait (retry back-off, partner polling) wait here.

A message to delay goes to the delay topic of the largest tier not longer than
its delay, with its target topic and due time as headers. The delay service
reads each tier in order; when a partition's head is not due yet it pauses that
partition until it is (no consumer of a main topic ever waits), then forwards
the message to its target topic with the same key (``bus.services.delays``).
"""

from __future__ import annotations

import time

from bus.topics import DELAY_TIERS_S, Topics

TIERS_S = DELAY_TIERS_S
TARGET = "demat-target"
DUE = "demat-due-ms"


def delay_topics(topics: Topics) -> list[str]:
    return [topics.delay(t) for t in TIERS_S]


def tier_for(delay_s: float) -> int:
    """The largest tier (seconds) not longer than ``delay_s`` (the shortest if below)."""
    fitting = [t for t in TIERS_S if t <= delay_s]
    return fitting[-1] if fitting else TIERS_S[0]


def delay_headers(target: str, delay_s: float, now_ms: int | None = None) -> dict[str, str]:
    """Headers of a delayed message: where it goes and when (epoch milliseconds)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return {TARGET: target, DUE: str(now_ms + int(delay_s * 1000))}


def header_value(headers: list[tuple[str, bytes]] | tuple, name: str) -> str | None:
    for key, value in headers or ():
        if key == name:
            return value.decode()
    return None

"""Request budgets and the short-lived cache of authenticated callers.

Both live in the memory of one API process: with several processes (``demat serve
--workers N``, or several nodes behind a load balancer) each enforces the rate limit on
its own, so a caller spread over N processes may send up to N times the rate, and a
revoked token may go on working on each process until its cached identity expires
(``DEMAT_API_AUTH_CACHE_SECONDS``, 5 s by default). A shared store would make the limit
exact across nodes; the bus has none that answers fast enough to consult on every
request (the object store is the only state all nodes share), so the bound is stated
instead.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bus.identity import Identity

Clock = Callable[[], float]


@dataclass
class Bucket:
    """A token bucket: ``burst`` requests at once, refilled at ``rate`` per second."""

    tokens: float
    stamp: float


@dataclass
class Limiter:
    """Token buckets by key (a token id, a login, a client address).

    ``rate`` 0 means no limit. At most ``max_keys`` buckets are kept: past that, the
    buckets that have refilled (nothing to remember) are dropped, then the oldest.
    """

    rate: float
    burst: int
    max_keys: int = 100_000
    clock: Clock = time.monotonic
    _buckets: dict[str, Bucket] = field(default_factory=dict, repr=False)

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may send a request (0: now), without spending one."""
        if self.rate <= 0:
            return 0.0
        bucket = self._refilled(key)
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.rate

    def take(self, key: str) -> float:
        """Spend one request of ``key``'s budget if it has one: 0, else the seconds to
        wait before the next one is allowed (nothing is spent)."""
        wait = self.wait(key)
        if wait == 0 and self.rate > 0:
            self._buckets[key].tokens -= 1
        return wait

    def _refilled(self, key: str) -> Bucket:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._prune(now)
            bucket = self._buckets[key] = Bucket(float(self.burst), now)
            return bucket
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        return bucket

    def _prune(self, now: float) -> None:
        full = [k for k, b in self._buckets.items()
                if b.tokens + (now - b.stamp) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]
        while len(self._buckets) >= self.max_keys:
            del self._buckets[next(iter(self._buckets))]


def retry_after(wait: float) -> str:
    """The ``Retry-After`` header value of a wait: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait)))


@dataclass
class AuthCache:
    """Identities of recently authenticated bearer secrets, kept ``ttl`` seconds.

    Only successes are kept, by the SHA-256 of the secret (never the secret); an entry
    also ends when its credential expires. ``ttl`` bounds how long a revoked token, a
    deleted user or a withdrawn role goes on being honoured by this process. ``ttl`` 0
    disables the cache.
    """

    ttl: float
    max_entries: int = 10_000
    clock: Clock = time.monotonic
    _entries: dict[str, tuple[float, Identity]] = field(default_factory=dict, repr=False)

    def get(self, secret: str) -> Identity | None:
        key = _key(secret)
        entry = self._entries.get(key)
        if entry is None:
            return None
        until, who = entry
        if until <= self.clock() or (who.expires_at is not None
                                     and who.expires_at <= datetime.now(UTC)):
            del self._entries[key]
            return None
        return who

    def put(self, secret: str, who: Identity) -> None:
        if self.ttl <= 0:
            return
        now = self.clock()
        if len(self._entries) >= self.max_entries:
            for key in [k for k, (until, _) in self._entries.items() if until <= now]:
                del self._entries[key]
            while len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]
        self._entries[_key(secret)] = (now + self.ttl, who)


def _key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()

"""Request budgets and the cache of authenticated callers, on a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bus.api.limits import AuthCache, Limiter, retry_after
from bus.identity import Identity


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_gets_its_burst_then_waits_for_the_refill() -> None:
    clock = Clock()
    limiter = Limiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]
    wait = limiter.take("a")
    assert wait == 0.5 and retry_after(wait) == "1"
    assert limiter.take("b") == 0  # another key has its own budget
    clock.now += 0.5
    assert limiter.take("a") == 0 and limiter.take("a") == 0.5
    clock.now += 60
    assert [limiter.take("a") for _ in range(4)][-1] > 0  # refilled up to the burst only


def test_waiting_does_not_spend_and_rate_zero_is_no_limit() -> None:
    clock = Clock()
    limiter = Limiter(rate=1.0, burst=1, clock=clock)
    assert limiter.wait("a") == 0 and limiter.wait("a") == 0
    assert limiter.take("a") == 0 and limiter.wait("a") == 1.0
    free = Limiter(rate=0, burst=1, clock=clock)
    assert all(free.take("a") == 0 for _ in range(1000))


def test_buckets_are_bounded_dropping_refilled_ones_first() -> None:
    clock = Clock()
    limiter = Limiter(rate=1.0, burst=2, max_keys=3, clock=clock)
    limiter.take("spent")
    limiter.take("spent")
    limiter.take("idle")
    clock.now += 5  # "idle" has refilled; "spent" too
    limiter.take("spent")
    limiter.take("spent")
    limiter.take("x")
    limiter.take("y")  # over max_keys: the refilled bucket goes, the spent one stays
    assert limiter.take("spent") > 0
    assert len(limiter._buckets) <= 3


def _who(expires: datetime | None = None) -> Identity:
    return Identity("app", "0123456789abcdef", {"216900910": frozenset({"producer"})},
                    expires)


def test_cache_keeps_an_identity_ttl_seconds_only() -> None:
    clock = Clock()
    cache = AuthCache(ttl=5, clock=clock)
    cache.put("dmt_secret", _who())
    assert cache.get("dmt_secret") == _who()
    assert cache.get("dmt_other") is None
    clock.now += 4.9
    assert cache.get("dmt_secret") is not None
    clock.now += 0.2  # past the bound: the next request asks the store again
    assert cache.get("dmt_secret") is None
    assert "dmt_secret" not in str(cache._entries)  # keyed by digest, never the secret


def test_cache_never_outlives_the_credential_and_zero_disables_it() -> None:
    cache = AuthCache(ttl=60)
    cache.put("gone", _who(datetime.now(UTC) - timedelta(seconds=1)))
    assert cache.get("gone") is None
    off = AuthCache(ttl=0)
    off.put("s", _who())
    assert off.get("s") is None


def test_cache_is_bounded() -> None:
    cache = AuthCache(ttl=60, max_entries=2)
    for secret in ("a", "b", "c"):
        cache.put(secret, _who())
    assert cache.get("a") is None and cache.get("c") is not None

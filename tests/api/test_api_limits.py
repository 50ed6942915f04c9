"""Rate limits per token and per address, and revocation through the cache of
authenticated callers, on a ``demat serve`` of its own with small budgets."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bus.dev.launcher import served_api
from bus.identity import IdentityStore
from bus.runtime import Runtime
from bus.settings import Settings

pytestmark = pytest.mark.stack
CITY_A = "216900910"
CACHE_SECONDS = 5.0  # the default bound on revocation
LIMITS = {"DEMAT_API_RATE": "1", "DEMAT_API_BURST": "3", "DEMAT_API_ANONYMOUS_RATE": "0.2",
          "DEMAT_API_ANONYMOUS_BURST": "3"}


@pytest.fixture(scope="module")
def limited(bus_env: dict[str, str], var_dir: Path) -> Iterator[httpx.Client]:
    with served_api(bus_env | LIMITS, var_dir / "api-limits.log") as served, \
            httpx.Client(base_url=served.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def ids(settings: Settings) -> IdentityStore:
    runtime = Runtime(settings)
    return IdentityStore.of(runtime)


def _token(ids: IdentityStore) -> tuple[str, str]:
    login = f"limits-{uuid.uuid4().hex[:6]}"
    ids.add_user(login, CITY_A, "producer")
    secret, record = ids.create_token(login)
    return secret, record["id"]


def _get(http: httpx.Client, secret: str | None, address: str | None = None
         ) -> httpx.Response:
    """``GET /v1/tenants``; ``address``: as a proxy on this host forwards for a client
    (uvicorn trusts ``X-Forwarded-For`` from 127.0.0.1 unless FORWARDED_ALLOW_IPS)."""
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return http.get("/v1/tenants", headers=headers | (
        {"X-Forwarded-For": address} if address else {}))


def test_a_token_over_its_burst_gets_429_and_another_token_is_unaffected(
        limited: httpx.Client, ids: IdentityStore) -> None:
    greedy, _ = _token(ids)
    other, _ = _token(ids)
    assert [_get(limited, greedy).status_code for _ in range(3)] == [200, 200, 200]
    over = _get(limited, greedy)
    assert over.status_code == 429, over.text
    assert over.json()["error"]["field"] == "Authorization"
    assert 1 <= int(over.headers["Retry-After"]) <= 2
    assert _get(limited, other).status_code == 200
    time.sleep(float(over.headers["Retry-After"]))
    assert _get(limited, greedy).status_code == 200  # refilled


def test_a_revoked_token_stops_working_within_the_cache_bound(limited: httpx.Client,
                                                              ids: IdentityStore) -> None:
    secret, token_id = _token(ids)
    assert _get(limited, secret).status_code == 200  # now in the API's cache
    ids.revoke(token_id)
    revoked = time.monotonic()
    while (got := _get(limited, secret)).status_code == 200:
        assert time.monotonic() - revoked < CACHE_SECONDS + 1, "revocation not honoured"
        time.sleep(1.1)  # within the token's own rate
    assert got.status_code == 401, got.text
    assert "revoked" in got.json()["error"]["message"]


def test_failed_authentications_are_limited_per_address(limited: httpx.Client,
                                                         ids: IdentityStore) -> None:
    attacker, neighbour = (f"10.{n}.{uuid.uuid4().int % 250}.7" for n in (1, 2))
    known, _ = _token(ids)
    assert _get(limited, known, attacker).status_code == 200  # authenticated before
    guesses = [_get(limited, f"dmt_{uuid.uuid4().hex[:16]}.{'x' * 43}", attacker).status_code
               for _ in range(3)]
    assert guesses == [401, 401, 401]
    slowed = _get(limited, None, attacker)
    assert slowed.status_code == 429 and slowed.json()["error"]["field"] == "Authorization"
    assert int(slowed.headers["Retry-After"]) >= 1
    assert _get(limited, known, attacker).status_code == 200  # a known caller goes on
    late, _ = _token(ids)
    assert _get(limited, late, attacker).status_code == 429  # an unknown one waits
    assert _get(limited, late, neighbour).status_code == 200  # another address does not


def test_serve_with_two_workers_shares_the_port(bus_env: dict[str, str], var_dir: Path,
                                                ids: IdentityStore) -> None:
    secret, _ = _token(ids)
    with served_api(bus_env | {"DEMAT_API_WORKERS": "2"}, var_dir / "api-workers.log") \
            as served, httpx.Client(base_url=served.url, timeout=30) as http:
        assert [_get(http, secret).status_code for _ in range(4)] == [200] * 4
        children = [p for p in Path("/proc").glob("[0-9]*/stat")
                    if _parent(p) == served.pid]
        assert len(children) >= 2  # the worker processes (uvicorn's)


def _parent(stat: Path) -> int | None:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


"""HTTP plumbing shared by connectors: typed errors and short in-process retries."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from connectors.errors import PermanentError, TransientError

T = TypeVar("T")


def raise_for_status(resp: httpx.Response, partner: str) -> httpx.Response:
    """5xx and 429 are transient; other 4xx are permanent."""
    if resp.status_code >= 500 or resp.status_code == 429:
        raise TransientError(f"{partner}: HTTP {resp.status_code} on {resp.request.method} "
                             f"{resp.request.url.path}", partner=partner, status=resp.status_code)
    if resp.status_code >= 400:
        raise PermanentError(f"{partner}: HTTP {resp.status_code} on {resp.request.method} "
                             f"{resp.request.url.path}: {resp.text[:300]}", partner=partner,
                             status=resp.status_code)
    return resp


async def call(partner: str, fn: Callable[[], Awaitable[T]], attempts: int = 3) -> T:
    """Run ``fn`` with a few quick retries for blips; network errors become transient."""
    async for attempt in AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential_jitter(multiplier=0.1, max=1.0, jitter=0.1),
            retry=retry_if_exception_type(TransientError), reraise=True):
        with attempt:
            try:
                return await fn()
            except httpx.TimeoutException as exc:
                raise TransientError(f"{partner}: timeout ({exc})", partner=partner) from exc
            except httpx.TransportError as exc:
                raise TransientError(f"{partner}: {type(exc).__name__}: {exc}",
                                     partner=partner) from exc
    raise AssertionError("unreachable")


def resolve_url(url: str, var_dir: Path) -> str:
    """``sim:NAME`` means the embedded simulator NAME (address in var/simulators.json)."""
    if not url.startswith("sim:"):
        return url
    name = url.removeprefix("sim:")
    try:
        return json.loads((var_dir / "simulators.json").read_text())[name]
    except (OSError, ValueError, KeyError):
        raise RuntimeError(f"simulator {name!r} is not running (no address in "
                           f"{var_dir / 'simulators.json'})") from None

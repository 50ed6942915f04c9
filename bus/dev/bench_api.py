"""The API phase of ``demat bench``: concurrent HTTP clients submitting small documents.

``demat serve`` runs beside the bench's workers. A producer user and token are made for
the bench tenant; then ``clients`` clients each submit their share of small PDFs
(multipart ``POST /v1/documents``, the flow of no-op steps), all at once. Every
request's time to its ``202 Accepted`` is measured: p50, p95 and p99, and errors
(any other answer, or no answer).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any

import httpx

from bus.dev.bench_config import TENANT
from bus.dev.bench_phases import BenchContext
from bus.dev.launcher import served_api
from bus.identity import IdentityStore
from bus.runtime import Runtime
from workers.common.demo import minimal_pdf


async def measure_api(ctx: BenchContext, env: dict[str, str], *, clients: int,
                      documents: int) -> dict[str, Any]:
    """``documents`` submissions by ``clients`` concurrent clients: latencies, errors."""
    runtime = Runtime(ctx.settings)
    ids = IdentityStore(runtime.store, runtime.tenants)
    login = f"bench-{uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(ids.add_user, login, TENANT, "producer")
    token, _ = await asyncio.to_thread(ids.create_token, login, name="bench")
    with served_api(env, ctx.settings.var_dir / "log" / "bench-api.log") as api:
        url = api.url
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits,
                                     headers={"Authorization": f"Bearer {token}"}) as http:
            await _submit(http, 0)  # the first request warms the process up
            times: list[float] = []
            errors: list[str] = []
            per_client = [range(c, documents, clients) for c in range(clients)]
            started = time.monotonic()
            await asyncio.gather(*(_client(http, share, times, errors)
                                   for share in per_client))
            seconds = time.monotonic() - started
    times.sort()
    return {"clients": clients, "documents": documents, "errors": len(errors),
            "first_errors": errors[:3], "seconds": round(seconds, 1),
            "submits_per_s": round(len(times) / seconds, 1) if seconds else None,
            "p50_ms": _ms(times, 0.50), "p95_ms": _ms(times, 0.95),
            "p99_ms": _ms(times, 0.99),
            "mean_ms": round(statistics.fmean(times) * 1000, 1) if times else None}


async def _client(http: httpx.AsyncClient, share: range, times: list[float],
                  errors: list[str]) -> None:
    for i in share:
        begun = time.monotonic()
        try:
            resp = await _submit(http, i)
        except httpx.HTTPError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        if resp.status_code == 202:
            times.append(time.monotonic() - begun)
        else:
            errors.append(f"{resp.status_code}: {resp.text[:200]}")


async def _submit(http: httpx.AsyncClient, i: int) -> httpx.Response:
    return await http.post("/v1/documents", data={
        "flow": "bench-noop", "tenant": TENANT, "metadata": f'{{"title": "api {i}"}}'},
        files=[("files", (f"api-{i}.pdf", minimal_pdf(f"API bench {i}"), "application/pdf"))])


def _ms(times: list[float], q: float) -> float | None:
    if not times:
        return None
    return round(times[min(len(times) - 1, int(q * len(times)))] * 1000, 1)

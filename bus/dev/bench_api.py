"""The API phase of ``demat bench``: concurrent HTTP clients submitting small documents.

``demat serve`` (``plan.api_workers`` processes) runs beside the bench's workers, which
run every accepted document through the flow of no-op steps on the same cores. A
producer user is made for the bench tenant, with one token per client (as separate
applications would have: each spends its own request budget); then ``clients`` clients
submit their share of small PDFs (multipart ``POST /v1/documents``) at once, in one of
two ways:

- paced (``rate`` > 0): together they offer ``rate`` submissions a second, client ``c``
  sending its ``k``-th at ``(c + k * clients) / rate`` seconds after the start (the
  clients take turns, each one every ``clients / rate`` seconds, as applications with
  their own work do); a request's latency counts from the time it was due, so a late
  answer also delays (and counts against) the next one of that client;
- saturating (``rate`` 0): each client sends its next one as soon as the last is
  accepted, which measures the most the bus accepts a second; latency is then the number
  of clients over that throughput (Little's law), not a property of one request.

Every request's time to its ``202 Accepted`` is measured: p50, p95 and p99, and errors
(any other answer, or no answer), with the CPU seconds the API processes spent.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp

from bus.dev.bench_config import TENANT
from bus.dev.bench_observe import cpu_seconds, percentile_ms
from bus.dev.bench_phases import BenchContext
from bus.dev.launcher import served_api
from bus.identity import IdentityStore
from bus.runtime import Runtime
from workers.common.demo import minimal_pdf


async def measure_api(ctx: BenchContext, env: dict[str, str], *, clients: int,
                      documents: int, workers: int = 1, rate: float = 0.0) -> dict[str, Any]:
    """``documents`` submissions by ``clients`` concurrent clients offering ``rate`` a
    second together (0: as fast as they are accepted): latencies, errors."""
    tokens = await _tokens(ctx, clients)
    env = env | {"DEMAT_API_WORKERS": str(workers)}
    with served_api(env, ctx.settings.var_dir / "log" / "bench-api.log") as api:
        # aiohttp, not httpx: httpx spends some 16 ms of CPU per multipart request, more
        # than the API itself, on the same cores (the bench measured its own client)
        async with aiohttp.ClientSession(
                api.url, connector=aiohttp.TCPConnector(limit=clients),
                timeout=aiohttp.ClientTimeout(total=60)) as http:
            await _submit(http, tokens[0], 0)  # the first request warms the process up
            times: list[float] = []
            errors: list[str] = []
            per_client = [range(c, documents, clients) for c in range(clients)]
            cpu, own = cpu_seconds(api.pid, children=True), _own_cpu()
            started = time.monotonic()
            due = schedule(started, rate)
            await asyncio.gather(*(_client(http, token, share, times, errors, due)
                                   for token, share in zip(tokens, per_client, strict=True)))
            seconds = time.monotonic() - started
            cpu, own = cpu_seconds(api.pid, children=True) - cpu, _own_cpu() - own
    times.sort()
    return {"clients": clients, "documents": documents, "workers": workers,
            "offered_per_s": rate or None,
            "errors": len(errors), "first_errors": errors[:3], "seconds": round(seconds, 1),
            "submits_per_s": round(len(times) / seconds, 1) if seconds else None,
            "p50_ms": percentile_ms(times, 0.50), "p95_ms": percentile_ms(times, 0.95),
            "p99_ms": percentile_ms(times, 0.99),
            "mean_ms": round(statistics.fmean(times) * 1000, 1) if times else None,
            "api_cpu_s": round(cpu, 1),
            "api_cpu_ms_per_submit": round(cpu * 1000 / len(times), 1) if times else None,
            "client_cpu_s": round(own, 1)}  # the bench process: clients, journal watcher


async def _tokens(ctx: BenchContext, clients: int) -> list[str]:
    """A producer user of the bench tenant with one token per client."""
    runtime = Runtime(ctx.settings)
    ids = IdentityStore.of(runtime)
    login = f"bench-{uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(ids.add_user, login, TENANT, "producer")
    made = await asyncio.gather(*(asyncio.to_thread(ids.create_token, login, name=f"bench-{c}")
                                  for c in range(clients)))
    return [secret for secret, _ in made]


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def schedule(started: float, rate: float) -> Callable[[int], float | None]:
    """When submission ``i`` is due when paced at ``rate`` a second; ``None``: now."""
    if rate <= 0:
        return lambda i: None
    return lambda i: started + i / rate


async def _client(http: aiohttp.ClientSession, token: str, share: range, times: list[float],
                  errors: list[str], due: Callable[[int], float | None]) -> None:
    for i in share:
        begun = due(i)
        if begun is None:
            begun = time.monotonic()
        elif begun > time.monotonic():
            await asyncio.sleep(begun - time.monotonic())
        try:
            status, text = await _submit(http, token, i)
        except (aiohttp.ClientError, TimeoutError) as exc:
            errors.append(f"{type(exc).__name__}: {exc!r}")
            continue
        if status == 202:
            times.append(time.monotonic() - begun)
        else:
            errors.append(f"{status}: {text[:200]}")


async def _submit(http: aiohttp.ClientSession, token: str, i: int) -> tuple[int, str]:
    form = aiohttp.FormData()
    form.add_field("flow", "bench-noop")
    form.add_field("tenant", TENANT)
    form.add_field("metadata", f'{{"title": "api {i}"}}')
    form.add_field("files", minimal_pdf(f"API bench {i}"), filename=f"api-{i}.pdf",
                   content_type="application/pdf")
    async with http.post("/v1/documents", data=form,
                         headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status, await resp.text()


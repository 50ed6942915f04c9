"""The phases of ``demat bench`` that go through the bus: warm-up, latency, transport,
large file and burst (``timed_burst`` serves every burst flow)."""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bus.broker import encode
from bus.client import DematClient
from bus.dev.bench_config import TENANT, BenchPlan, Log, bench_flows, seal_available
from bus.dev.bench_counts import CallCounts
from bus.dev.bench_observe import JournalWatcher, RssSampler
from bus.dev.embedded import STACK_PROCESSES
from bus.settings import Settings
from connectors.pdfgen import text_pdf
from schemas.envelope import Envelope
from schemas.ids import new_id
from schemas.messages import StepTask
from workers.common.demo import minimal_pdf


@dataclass
class BenchContext:
    """What every phase uses: settings, a client, the journal watcher, work folder."""

    settings: Settings
    client: DematClient
    watcher: JournalWatcher
    inputs: Path
    plan: BenchPlan
    log: Log
    metrics_url: str | None = None  # SeaweedFS's metrics: its count of S3 requests
    sample: Envelope | None = None
    errors: dict[str, int] = field(default_factory=dict)

    async def submit_files(self, flow: str, paths: list[Path], keys: list[str | None]
                           ) -> list[str]:
        gate = asyncio.Semaphore(self.plan.submit_concurrency)

        async def one(i: int) -> str:
            async with gate:
                receipt = await self.client.submit(
                    flow, [paths[i]], tenant=TENANT, key=keys[i],
                    metadata={"title": f"{flow} {i}"})
                return receipt.doc_id

        return list(await asyncio.gather(*(one(i) for i in range(len(paths)))))

    async def finish(self, ids: list[str], what: str, timeout: float) -> None:
        if not await self.watcher.wait_for(ids, timeout):
            missing = sum(1 for i in ids if i not in self.watcher.finished)
            raise RuntimeError(f"{what}: {missing} of {len(ids)} documents not finished "
                               f"after {timeout:.0f} s")
        failed = [i for i in ids if self.watcher.finished[i][0] != "completed"]
        if failed:
            self.errors[what] = len(failed)


async def noop_envelopes(ctx: BenchContext, count: int) -> list[Envelope]:
    """``count`` distinct no-op documents sharing one stored file (uploaded once)."""
    if ctx.sample is None:
        path = ctx.inputs / "noop.pdf"
        path.write_bytes(minimal_pdf("bench no-op document"))
        ctx.sample = await asyncio.to_thread(
            ctx.client.prepare, "bench-noop", [path], tenant=TENANT,
            metadata={"title": "bench no-op"})
    return [ctx.sample.model_copy(update={"id": new_id()}) for _ in range(count)]


async def warm_up(ctx: BenchContext) -> None:
    """One document per flow, so every consumer group has joined before timing."""
    path = ctx.inputs / "warm.pdf"
    path.write_bytes(minimal_pdf("warm up"))
    ids = [(await ctx.client.submit(f, [path], tenant=TENANT, metadata={"title": "warm"})
            ).doc_id for f in ("bench-noop", "bench-payslip", "bench-large")]
    await ctx.finish(ids, "warm-up", 180)


async def measure_latency(ctx: BenchContext) -> dict[str, Any]:
    samples = []
    for env in await noop_envelopes(ctx, ctx.plan.latency_samples):
        start = time.monotonic()
        await ctx.client.submit_envelope(env)
        await ctx.finish([env.id], "latency", 60)
        samples.append((ctx.watcher.finished[env.id][1] - start) * 1000)
        await asyncio.sleep(0.05)
    samples.sort()
    return {"samples": len(samples), "p50_ms": round(_pct(samples, 50), 1),
            "p95_ms": round(_pct(samples, 95), 1), "p99_ms": round(_pct(samples, 99), 1),
            "mean_ms": round(statistics.fmean(samples), 1)}


def _pct(values: list[float], pct: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


async def measure_bus_transport(ctx: BenchContext) -> tuple[float, float]:
    """Documents/s through the no-op flow, and the size of one step task in bytes."""
    envs = await noop_envelopes(ctx, ctx.plan.transport_documents)
    payload = len(encode(StepTask(doc_id=envs[0].id, step="noop1", kind="noop",
                                  envelope=envs[0], idempotency_key=f"{envs[0].id}/noop1")))
    gate = asyncio.Semaphore(256)

    async def one(env: Envelope) -> None:
        async with gate:
            await ctx.client.submit_envelope(env)

    start = time.monotonic()
    await asyncio.gather(*(one(e) for e in envs))
    await ctx.finish([e.id for e in envs], "transport", 600)
    end = max(ctx.watcher.finished[e.id][1] for e in envs)
    return len(envs) / (end - start), payload


async def measure_large_file(ctx: BenchContext, pids: dict[str, int]) -> dict[str, Any]:
    """RSS growth of every process while one large file goes through the bus."""
    path = ctx.inputs / "large.pdf"
    await asyncio.to_thread(_write_large_pdf, path, ctx.plan.large_file_mb)
    with RssSampler(pids | {"submitter": os.getpid()}) as rss:
        start = time.monotonic()
        ids = await ctx.submit_files("bench-large", [path], [None])
        await ctx.finish(ids, "large file", 1800)
        seconds = time.monotonic() - start
    path.unlink()
    growth = rss.growth()
    bus = {n: g for n, g in growth.items() if n not in STACK_PROCESSES}
    return {"file_mb": ctx.plan.large_file_mb, "seconds": round(seconds, 1),
            "rss_growth_mb": growth, "max_growth_mb": max(bus.values(), default=0.0)}


def _write_large_pdf(path: Path, megabytes: int) -> None:
    block = os.urandom(1024 * 1024)
    with path.open("wb") as fh:
        fh.write(b"%PDF-1.7\n%bench large file\n")
        for i in range(megabytes):
            fh.write(i.to_bytes(8, "big") + block[8:])


async def measure_burst(ctx: BenchContext, pids: dict[str, int]) -> dict[str, Any]:
    """N pay-slip-like PDFs from submission to completed."""
    count = ctx.plan.burst_documents
    folder = ctx.inputs / "payroll"
    folder.mkdir(exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"bulletin-{i:06d}.pdf"
        path.write_bytes(payslip_pdf(i))
        paths.append(path)
    keys: list[str | None] = [f"payroll-2026-11-M{i:06d}" for i in range(count)]
    ctx.log(f"burst: submitting {count} pay slips")
    steps = [s["name"] for s in bench_flows(1, seal_available())["bench-payslip"]["steps"]]
    figures = await timed_burst(ctx, pids, lambda: ctx.submit_files("bench-payslip", paths, keys),
                                "submitted")
    return {"flow": "bench-payslip", "steps": steps, **figures}


def payslip_pdf(index: int) -> bytes:
    """A pay-slip-like PDF of 30 to 150 KB: some sixty lines of pay items and a scanned
    logo (grey pixels), its size drawn from the index (the same slip at every run)."""
    draw = random.Random(index)
    lines = [f"Bulletin de paie 2026-11 - agent M{index:06d}", "Ville de Bench - DRH"]
    lines += [f"{code:04d} Rubrique {code} base {draw.uniform(1, 4000):9.2f} taux "
              f"{draw.uniform(0, 20):5.2f} montant {draw.uniform(-500, 3000):9.2f}"
              for code in range(1000, 1060)]
    width = 300
    height = draw.randint(30_000, 150_000) // width
    return text_pdf(lines, size=7, image=(width, height, draw.randbytes(width * height)))


async def timed_burst(ctx: BenchContext, pids: dict[str, int],
                      submit: Callable[[], Awaitable[list[str]]], done: str) -> dict[str, Any]:
    """Figures of one burst: from calling ``submit`` (it returns the ids it published) to
    the last of them finished, with every process's peak RSS and CPU seconds (this
    bench process's too, as ``bench``), and the S3 requests and Kafka records it cost.
    Documents that did not complete are counted apart, not in docs/s."""
    counts = CallCounts(ctx.settings, ctx.metrics_url)
    await counts.start()
    with RssSampler(pids | {"bench": os.getpid()}) as rss:
        start = time.monotonic()
        ids = await submit()
        submitted = time.monotonic() - start
        ctx.log(f"burst: {done} in {submitted:.1f} s, waiting for completion")
        await ctx.finish(ids, "burst", 3600)
        end = max(ctx.watcher.finished[i][1] for i in ids)
    seconds = end - start
    errors = ctx.errors.get("burst", 0)
    calls = await counts.stop(len(ids))
    cpu = dict(sorted(rss.cpu.items(), key=lambda kv: -kv[1]))
    return {"documents": len(ids), "seconds": round(seconds, 1),
            "submit_seconds": round(submitted, 1),
            "docs_per_s": round((len(ids) - errors) / seconds, 1), "errors": errors,
            "peak_rss_mb": rss.peak, "cpu_seconds_by_process": cpu,
            "cpu_ms_per_doc": round(1000 * sum(cpu.values()) / max(len(ids), 1), 1),
            **calls}

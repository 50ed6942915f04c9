"""``demat bench``: the bus measured against the raw transport and the payroll burst.

Every figure comes from one run on a fresh embedded stack (its own var directory),
so the ratios hold on a noisy machine:

- transport: documents/s through a flow of K no-op steps, and messages/s through a
  raw aiokafka consume -> produce chain of the same number of hops and payload size;
- burst: N pay-slip-like PDFs from submission to completed through
  validate -> seal (when the seal connector exists) -> deposit;
- memory: peak RSS of each bus process during the burst, and RSS growth while one
  large file is submitted, validated and deposited (streaming);
- latency: submission -> completed of single no-op documents under no load.

Completion is observed on the journal topic, not by polling document states. The
broker keeps its log in memory by default (``--broker s3``: in SeaweedFS, the durable
embedded mode, where every produce also costs object-store writes that Apache Kafka's
local log does not).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bus.broker import encode, ensure_topics
from bus.client import DematClient
from bus.dev.embedded import BROKER_STORAGES, EmbeddedStack, pid_alive
from bus.dev.launcher import Services, wait_until
from bus.runtime import Runtime
from bus.settings import Settings
from schemas.envelope import Envelope
from schemas.ids import new_id
from schemas.messages import StepTask
from workers.common.demo import minimal_pdf

TENANT = "216900910"
TERMINAL = {"completed", "error", "rejected", "duplicate"}
RESULTS = Path("bench") / "results.md"
Log = Callable[[str], None]


@dataclass
class BenchPlan:
    """Sizes of one benchmark run (``quick`` is the two-minute version)."""

    burst_documents: int = 13_000
    transport_documents: int = 1_000
    noop_steps: int = 3
    latency_samples: int = 40
    large_file_mb: int = 1024
    submit_concurrency: int = 32
    mode: str = "full"
    burst_flow: str = "bench-payslip"  # or "payslip": the real flow (bus.dev.bench_payroll)
    broker: str = "memory"  # Tansu's log storage: memory (like Kafka's page cache) or s3

    @classmethod
    def quick(cls) -> BenchPlan:
        return cls(burst_documents=1_000, transport_documents=300, latency_samples=15,
                   large_file_mb=128, mode="quick")


# --- the benchmark's own configuration ---------------------------------------------


def seal_available() -> bool:
    """True when a local seal step exists to put in the burst flow."""
    from bus.plugins import load_plugins
    from connectors.registry import connector_types

    return "sign" in load_plugins().steps and "seal" in connector_types()


def bench_flows(noop_steps: int, seal: bool) -> dict[str, dict[str, Any]]:
    """Flow definitions used by the benchmark (written to its own flows folder)."""
    noop = [{"name": f"noop{i}", "kind": "noop"} for i in range(1, noop_steps + 1)]
    burst = [{"name": "validate", "kind": "validate"}]
    if seal:
        burst.append({"name": "seal", "kind": "sign", "connector": "signature"})
    burst.append({"name": "deposit", "kind": "deposit", "connector": "ged",
                  "retry": {"max_attempts": 12, "backoff_seconds": 1.0}})
    large = [{"name": "validate", "kind": "validate",
              "retry": {"timeout_seconds": 900}},
             {"name": "deposit", "kind": "deposit", "connector": "ged",
              "retry": {"timeout_seconds": 900}}]
    return {
        "bench-noop": {"name": "bench-noop", "metadata_model": "document", "steps": noop},
        "bench-payslip": {"name": "bench-payslip", "metadata_model": "document",
                          "steps": burst},
        "bench-large": {"name": "bench-large", "metadata_model": "document", "steps": large},
    }


def write_config(var_dir: Path, plan: BenchPlan) -> dict[str, str]:
    """Tenants and flows of the benchmark; returns the environment pointing at them."""
    flows_dir = var_dir / "flows"
    flows_dir.mkdir(parents=True, exist_ok=True)
    flows = bench_flows(plan.noop_steps, seal_available())
    for name, flow in flows.items():
        (flows_dir / f"{name}.yaml").write_text(yaml.safe_dump(flow, sort_keys=False))
    connectors: dict[str, Any] = {"ged": {"type": "folder", "options": {"path": "ged"}}}
    if seal_available():
        connectors["signature"] = {"type": "seal", "options": {}}
    tenant: dict[str, Any] = {"siren": TENANT, "name": "Bench city", "flows": sorted(flows),
                              "connectors": connectors}
    if plan.burst_flow == "payslip":  # the demo tenant, with its simulators, plus the above
        from bus.dev.bench_payroll import demo_tenant

        demo = demo_tenant(TENANT)  # it uses every flow (no "flows" list)
        tenant = demo | {"connectors": demo["connectors"] | connectors}
        # SIPs as the pay slip flow sizes them (the demo keeps them small to be quick)
        tenant["settings"]["archive"].pop("batch", None)
    tenants = {"tenants": [tenant]}
    tenants_file = var_dir / "tenants.yaml"
    tenants_file.write_text(yaml.safe_dump(tenants, sort_keys=False))
    return {"DEMAT_TENANTS_FILE": str(tenants_file), "DEMAT_EXTRA_FLOWS_DIR": str(flows_dir),
            "DEMAT_LOG_LEVEL": "WARNING"}


# --- observing the bus ---------------------------------------------------------------


class JournalWatcher:
    """Follows the journal topic from its end and notes when documents finish."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = f"{settings.topic_prefix}.journal"
        self.finished: dict[str, tuple[str, float]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap,
                                    enable_auto_commit=False, fetch_max_wait_ms=50)
        await consumer.start()
        deadline = time.monotonic() + 60
        while not (parts := consumer.partitions_for_topic(self.topic) or set()):
            if time.monotonic() > deadline:
                await consumer.stop()
                raise RuntimeError(f"topic {self.topic} has no partitions")
            await asyncio.sleep(0.5)
            await consumer.topics()  # refreshes the metadata
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=100, max_records=2000)
            now = time.monotonic()
            for records in batches.values():
                for rec in records:
                    self._note(rec.value, now)

    def _note(self, raw: bytes, now: float) -> None:
        try:
            event = json.loads(raw)
        except ValueError:
            return
        if event.get("type") in TERMINAL and event.get("doc_id") not in self.finished:
            self.finished[event["doc_id"]] = (event["type"], now)

    async def wait_for(self, ids: list[str], timeout: float) -> bool:
        """True once every id finished (any terminal state), False at the timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(i in self.finished for i in ids):
                return True
            await asyncio.sleep(0.02)
        return False

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()


class RssSampler:
    """Samples the resident memory of named processes from a thread."""

    def __init__(self, pids: dict[str, int], interval: float = 0.2) -> None:
        self.pids = pids
        self.interval = interval
        self.first: dict[str, float] = {}
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._sample()
        self.first = dict(self.peak)
        self._cpu_start = {n: cpu_seconds(p) for n, p in self.pids.items()}
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.cpu = {n: round(cpu_seconds(p) - self._cpu_start[n], 1)
                    for n, p in self.pids.items()}

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        for name, pid in self.pids.items():
            mb = rss_mb(pid)
            if mb is not None:
                self.peak[name] = max(self.peak.get(name, 0.0), mb)

    def growth(self) -> dict[str, float]:
        return {n: round(self.peak[n] - self.first.get(n, self.peak[n]), 1) for n in self.peak}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float | None:
    """Resident set size of ``pid`` in MiB (``None`` if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# --- phases --------------------------------------------------------------------------


@dataclass
class BenchContext:
    """What every phase uses: settings, a client, the journal watcher, work folder."""

    settings: Settings
    client: DematClient
    watcher: JournalWatcher
    inputs: Path
    plan: BenchPlan
    log: Log
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


async def measure_raw_transport(settings: Settings, hops: int, count: int, payload: int
                                ) -> float:
    """Messages/s through ``hops`` chained topics by plain aiokafka forwarders."""
    run = str(time.time_ns())
    topics = [f"{settings.topic_prefix}.bench.raw.{run}.{i}" for i in range(hops + 1)]
    await ensure_topics(settings, topics)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all",
                                enable_idempotence=False, linger_ms=2)
    await producer.start()
    forwarders = [_Forwarder(settings, topics[i], topics[i + 1], producer, f"raw-{run}-{i}")
                  for i in range(hops)]
    sink = _Sink(settings, topics[-1])
    try:
        for f in forwarders:
            await f.start()
        await sink.start()
        body = b"x" * payload
        start = time.monotonic()
        sends = [await producer.send(topics[0], body, key=f"doc-{i}".encode())
                 for i in range(count)]
        await asyncio.gather(*sends)
        end = await sink.wait(count, 600)
        return count / (end - start)
    finally:
        for f in forwarders:
            await f.stop()
        await sink.stop()
        await producer.stop()


def _assigned_consumer(settings: Settings, topic: str, group: str) -> AIOKafkaConsumer:
    """A consumer given every partition of ``topic`` (committing under ``group``): the
    chain starts at once instead of waiting for nine group joins."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                fetch_max_wait_ms=settings.fetch_wait_ms)
    consumer.assign([TopicPartition(topic, p) for p in range(settings.partitions)])
    return consumer


class _Forwarder:
    """Consume one topic, produce every record to the next (batched, committed)."""

    def __init__(self, settings: Settings, source: str, target: str,
                 producer: AIOKafkaProducer, group: str) -> None:
        self.target = target
        self.producer = producer
        self.consumer = _assigned_consumer(settings, source, group)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=100, max_records=500)
            sends = [await self.producer.send(self.target, r.value, key=r.key)
                     for records in batches.values() for r in records]
            if sends:
                await asyncio.gather(*sends)
                await self.consumer.commit()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()


class _Sink:
    """Counts what reaches the last topic of the raw chain."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.consumer = _assigned_consumer(settings, topic, f"{topic}.sink")
        self.count = 0
        self.last = 0.0

    async def start(self) -> None:
        await self.consumer.start()

    async def wait(self, count: int, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while self.count < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"raw chain: {self.count} of {count} messages arrived")
            batches = await self.consumer.getmany(timeout_ms=100, max_records=2000)
            n = sum(len(r) for r in batches.values())
            if n:
                self.count += n
                self.last = time.monotonic()
        return self.last

    async def stop(self) -> None:
        await self.consumer.stop()


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
    bus = {n: g for n, g in growth.items() if n not in ("tansu", "weed")}
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
        path.write_bytes(minimal_pdf(f"Bulletin de paie 2026-11 agent M{i:06d} net 2143.17"))
        paths.append(path)
    keys: list[str | None] = [f"payroll-2026-11-M{i:06d}" for i in range(count)]
    ctx.log(f"burst: submitting {count} pay slips")
    steps = [s["name"] for s in bench_flows(1, seal_available())["bench-payslip"]["steps"]]
    figures = await timed_burst(ctx, pids, lambda: ctx.submit_files("bench-payslip", paths, keys),
                                "submitted")
    return {"flow": "bench-payslip", "steps": steps, **figures}


async def timed_burst(ctx: BenchContext, pids: dict[str, int],
                      submit: Callable[[], Awaitable[list[str]]], done: str) -> dict[str, Any]:
    """Figures of one burst: from calling ``submit`` (it returns the ids it published) to
    the last of them finished, with every process's peak RSS and CPU seconds."""
    with RssSampler(pids) as rss:
        start = time.monotonic()
        ids = await submit()
        submitted = time.monotonic() - start
        ctx.log(f"burst: {done} in {submitted:.1f} s, waiting for completion")
        await ctx.finish(ids, "burst", 3600)
        end = max(ctx.watcher.finished[i][1] for i in ids)
    seconds = end - start
    return {"documents": len(ids), "seconds": round(seconds, 1),
            "submit_seconds": round(submitted, 1), "docs_per_s": round(len(ids) / seconds, 1),
            "errors": ctx.errors.get("burst", 0), "peak_rss_mb": rss.peak,
            "cpu_seconds_by_process": dict(sorted(rss.cpu.items(), key=lambda kv: -kv[1]))}


# --- the run -----------------------------------------------------------------------------


async def _phases(settings: Settings, plan: BenchPlan, pids: dict[str, int], inputs: Path,
                  log: Log) -> dict[str, Any]:
    watcher = JournalWatcher(settings)
    await watcher.start()
    try:
        async with DematClient(settings, producer_name="bench") as client:
            ctx = BenchContext(settings, client, watcher, inputs, plan, log)
            log("warming up")
            await warm_up(ctx)
            log("latency of single no-op documents")
            latency = await measure_latency(ctx)
            log(f"transport: {plan.transport_documents} documents through "
                f"{plan.noop_steps} no-op steps")
            bus_rate, payload = await measure_bus_transport(ctx)
            hops = 2 * plan.noop_steps + 2
            log(f"transport: raw aiokafka chain of {hops} hops, {payload}-byte messages")
            raw_rate = await measure_raw_transport(settings, hops, plan.transport_documents,
                                                   payload)
            log(f"memory: one {plan.large_file_mb} MB file through validate -> deposit")
            large = await measure_large_file(ctx, pids)
            if plan.burst_flow == "payslip":
                from bus.dev import bench_payroll as payroll_bench
                burst = await payroll_bench.measure(ctx, pids)
            else:
                burst = await measure_burst(ctx, pids)
    finally:
        await watcher.stop()
    bus_peaks = {n: mb for n, mb in burst.pop("peak_rss_mb").items()
                 if n not in ("tansu", "weed")}
    return {
        "transport": {"steps": plan.noop_steps, "hops": hops, "payload_bytes": payload,
                      "documents": plan.transport_documents,
                      "bus_docs_per_s": round(bus_rate, 1),
                      "raw_docs_per_s": round(raw_rate, 1),
                      "ratio": round(bus_rate / raw_rate, 3)},
        "burst": burst,
        "memory": {"peak_rss_mb": round(max(bus_peaks.values()), 1),
                   "peak_rss_by_process_mb": {n: round(v, 1) for n, v in bus_peaks.items()},
                   "large_file_mb": large["file_mb"],
                   "large_file_seconds": large["seconds"],
                   "large_file_rss_growth_mb": round(large["max_growth_mb"], 1),
                   "large_file_growth_by_process_mb": large["rss_growth_mb"]},
        "latency": latency,
    }


def run_bench(var_dir: Path, plan: BenchPlan, log: Log = print) -> dict[str, Any]:
    """Start a fresh stack and workers in ``var_dir``, run every phase, stop them."""
    started = time.monotonic()
    log = _stamped(log, started)
    var_dir.mkdir(parents=True, exist_ok=True)
    env = write_config(var_dir, plan)
    stack = EmbeddedStack(var_dir, broker_storage=plan.broker)
    services = Services(var_dir, env=env)
    settings = Settings(var_dir=var_dir, tenants_file=Path(env["DEMAT_TENANTS_FILE"]),
                        extra_flows_dir=Path(env["DEMAT_EXTRA_FLOWS_DIR"]))
    Runtime(settings).check()  # a configuration error stops here, named
    log(f"starting embedded stack and workers in {var_dir}")
    stack.start()
    try:
        services.start()
        wait_until(lambda: (var_dir / "simulators.json").exists(), 60)
        _check_alive(services)
        pids = dict(services.pids) | {n: p for n, p in stack.info["pids"].items()}
        inputs = var_dir / "inputs"
        inputs.mkdir(exist_ok=True)
        figures = asyncio.run(_phases(settings, plan, pids, inputs, log))
    finally:
        log("stopping")
        services.stop(grace=5)
        stack.stop(grace=2)  # a throwaway stack: no need to wait for SeaweedFS to flush
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "commit": git_commit(),
            "machine": machine(), "mode": plan.mode, "broker": plan.broker,
            "burst_flow": plan.burst_flow, **figures,
            "seconds": round(time.monotonic() - started, 1)}


def _stamped(log: Log, started: float) -> Log:
    return lambda message: log(f"[{time.monotonic() - started:6.1f} s] {message}")


def _check_alive(services: Services) -> None:
    time.sleep(2)
    dead = [g for g, pid in services.pids.items() if not pid_alive(pid)]
    if dead:
        raise RuntimeError(f"worker process(es) {', '.join(dead)} exited at start: see "
                           f"{services.var_dir / 'log'}")


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> dict[str, Any]:
    ram_gb = 0.0
    with contextlib.suppress(OSError), open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    return {"cores": os.cpu_count(), "ram_gb": ram_gb, "python": platform.python_version()}


# --- output -------------------------------------------------------------------------------


def rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(figure, value, target) rows of the summary table."""
    t, b, m, lat = (report[k] for k in ("transport", "burst", "memory", "latency"))
    return [
        ("broker log storage", report.get("broker", "s3"), ""),
        ("burst flow", report.get("burst_flow", "bench-payslip"), ""),
        ("transport: bus docs/s", f"{t['bus_docs_per_s']}", ""),
        ("transport: raw chain docs/s", f"{t['raw_docs_per_s']}", f"{t['hops']} hops"),
        ("transport: ratio", f"{t['ratio']}", ">= 0.5 (goal 0.8)"),
        ("burst: documents", f"{b['documents']} ({' -> '.join(b['steps'])})", ""),
        ("burst: seconds", f"{b['seconds']} (submitted in {b['submit_seconds']})", ""),
        ("burst: docs/s", f"{b['docs_per_s']}", ">= 100"),
        ("burst: CPU s by process", ", ".join(
            f"{n} {v}" for n, v in list(b["cpu_seconds_by_process"].items())[:5]), ""),
        ("memory: peak RSS per process MB", f"{m['peak_rss_mb']}", "<= 300"),
        ("memory: large file RSS growth MB",
         f"{m['large_file_rss_growth_mb']} ({m['large_file_mb']} MB file)", "< 64"),
        ("latency p50 / p95 / p99 ms",
         f"{lat['p50_ms']} / {lat['p95_ms']} / {lat['p99_ms']}", "p95 < 250"),
    ]


def append_results(report: dict[str, Any], path: Path = RESULTS) -> None:
    """Append one line of figures to the results file (with its header when new)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(
            "# demat bench results\n\nOne line per `demat bench` run "
            "(`--quick`: 1,000-document burst, 128 MB file).\n\n"
            "| date | commit | machine | mode | transport bus/raw docs/s (ratio) | "
            "burst docs, s, docs/s | peak RSS MB | large-file growth MB | "
            "latency p50/p95/p99 ms |\n|---|---|---|---|---|---|---|---|---|\n")
    t, b, m, lat = (report[k] for k in ("transport", "burst", "memory", "latency"))
    mc = report["machine"]
    line = (f"| {report['date']} | {report['commit']} | {mc['cores']} cores, "
            f"{mc['ram_gb']} GB | {report['mode']}, {report.get('broker', 's3')} broker, "
            f"flow {report.get('burst_flow', 'bench-payslip')} | "
            f"{t['bus_docs_per_s']}/{t['raw_docs_per_s']} ({t['ratio']}) | "
            f"{b['documents']}, {b['seconds']}, {b['docs_per_s']} | {m['peak_rss_mb']} | "
            f"{m['large_file_rss_growth_mb']} ({m['large_file_mb']} MB) | "
            f"{lat['p50_ms']}/{lat['p95_ms']}/{lat['p99_ms']} |\n")
    with path.open("a") as fh:
        fh.write(line)


def add_commands(sub: Any) -> None:
    """Register ``demat bench``."""
    s = sub.add_parser("bench", help="measure the bus against the raw transport and a "
                       "payroll burst on a fresh embedded stack")
    s.add_argument("--quick", action="store_true", help="1,000-document burst, 128 MB file")
    s.add_argument("--documents", type=int, help="burst size (default 13,000)")
    s.add_argument("--broker", choices=sorted(BROKER_STORAGES), default="memory",
                   help="where the embedded broker keeps its log during the run (memory: "
                   "as Kafka's page cache; s3: the durable embedded mode, every produce "
                   "written to SeaweedFS)")
    s.add_argument("--flow", choices=["bench-payslip", "payslip"], default="bench-payslip",
                   help="burst flow: validate -> seal -> deposit (default), or the real pay "
                   "slip flow (payroll run ingested, encrypted, sealed, ENSAP lots, archived)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--keep", action="store_true", help="keep the bench var directory")
    s.add_argument("--no-record", action="store_true", help="do not append to bench/results.md")
    s.set_defaults(func=cmd_bench)


def cmd_bench(args: Any) -> int:
    from rich.console import Console
    from rich.table import Table

    from bus.settings import get_settings

    err, out = Console(stderr=True), Console()
    plan = BenchPlan.quick() if args.quick else BenchPlan()
    if args.documents:
        plan.burst_documents = args.documents
    plan.broker, plan.burst_flow = args.broker, args.flow
    var_dir = (get_settings().var_dir / "bench" / time.strftime("%Y%m%d-%H%M%S")).resolve()
    try:
        report = run_bench(var_dir, plan, log=lambda m: err.print(f"[dim]{m}[/]"))
    finally:
        if not args.keep:
            shutil.rmtree(var_dir, ignore_errors=True)
    if not args.no_record:
        append_results(report)
    if args.json:
        out.print_json(json.dumps(report))
    else:
        table = Table("figure", "value", "target", title=f"demat bench ({report['seconds']} s)")
        for row in rows(report):
            table.add_row(*row)
        out.print(table)
    return 0

"""``demat bench``: the bus measured against the raw transport and the payroll burst.

Every figure comes from one run on a fresh embedded stack (its own var directory),
so the ratios hold on a noisy machine:

- transport: documents/s through a flow of K no-op steps, and messages/s through a
  raw aiokafka consume -> produce chain of the same number of hops and payload size;
- burst: N pay-slip-like PDFs from submission to completed through
  validate -> seal (when the seal connector exists) -> deposit;
- memory: peak RSS of each bus process during the burst, and RSS growth while one
  large file is submitted, validated and deposited (streaming);
- latency: submission -> completed of single no-op documents under no load;
- api: 200 concurrent HTTP clients submitting small documents through ``demat serve``
  (``bus.dev.bench_api``; ``--only api`` runs it alone).

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
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bus.client import DematClient
from bus.dev import bench_payroll as payroll_bench
from bus.dev.bench_api import measure_api
from bus.dev.bench_config import BenchPlan, Log, write_config
from bus.dev.bench_console import measure_console
from bus.dev.bench_observe import JournalWatcher
from bus.dev.bench_phases import (
    BenchContext,
    measure_burst,
    measure_bus_transport,
    measure_large_file,
    measure_latency,
    warm_up,
)
from bus.dev.bench_raw import measure_raw_transport
from bus.dev.embedded import (
    BROKER_STORAGES,
    STACK_PROCESSES,
    EmbeddedStack,
    free_ports,
    pid_alive,
)
from bus.dev.launcher import Services, wait_until
from bus.runtime import Runtime
from bus.settings import Settings, get_settings

RESULTS = Path("bench") / "results.md"
TABLE_HEADER = (
    "| date | commit | machine | mode | transport docs/s bus/raw/raw a process per hop "
    "(ratios) | burst docs, s, docs/s, not completed | burst S3 requests, Kafka records, "
    "CPU ms per doc | peak RSS MB | large-file growth MB | latency p50/p95/p99 ms |\n"
    "|---|---|---|---|---|---|---|---|---|---|\n")


async def _phases(settings: Settings, plan: BenchPlan, pids: dict[str, int], inputs: Path,
                  log: Log, env: dict[str, str], metrics_url: str) -> dict[str, Any]:
    watcher = JournalWatcher(settings)
    await watcher.start()
    try:
        async with DematClient(settings, producer_name="bench") as client:
            ctx = BenchContext(settings, client, watcher, inputs, plan, log,
                               metrics_url=metrics_url)
            if plan.only == "api":
                return await _api_phase(ctx, env)
            if plan.only == "console":
                log("console: the documents list with 100,000 documents in the index")
                return {"console": await measure_console(ctx, env)}
            log("warming up")
            await warm_up(ctx)
            if plan.only == "burst":
                return _burst_only(await _burst(ctx, pids))
            log("latency of single no-op documents")
            latency = await measure_latency(ctx)
            transport = await _transport(ctx)
            api = await _api_phase(ctx, env)
            log("console: the documents list with 100,000 documents in the index")
            api["console"] = await measure_console(ctx, env)
            log(f"memory: one {plan.large_file_mb} MB file through validate -> deposit")
            large = await measure_large_file(ctx, pids)
            burst = await _burst(ctx, pids)
    finally:
        await watcher.stop()
    bus_peaks = {n: mb for n, mb in burst.pop("peak_rss_mb").items()
                 if n not in STACK_PROCESSES}
    return {
        "transport": transport,
        "burst": burst,
        "memory": {"peak_rss_mb": round(max(bus_peaks.values()), 1),
                   "peak_rss_by_process_mb": {n: round(v, 1) for n, v in bus_peaks.items()},
                   "large_file_mb": large["file_mb"],
                   "large_file_seconds": large["seconds"],
                   "large_file_rss_growth_mb": round(large["max_growth_mb"], 1),
                   "large_file_growth_by_process_mb": large["rss_growth_mb"]},
        "latency": latency,
        **api,
    }


async def _burst(ctx: BenchContext, pids: dict[str, int]) -> dict[str, Any]:
    if ctx.plan.burst_flow == "payslip":
        return await payroll_bench.measure(ctx, pids)
    return await measure_burst(ctx, pids)


def _burst_only(burst: dict[str, Any]) -> dict[str, Any]:
    """The report of ``--only burst``: the burst and the bus processes' peak RSS."""
    peaks = {n: mb for n, mb in burst.pop("peak_rss_mb").items() if n not in STACK_PROCESSES}
    return {"burst": burst, "memory": {"peak_rss_mb": round(max(peaks.values()), 1),
                                       "peak_rss_by_process_mb": {
                                           n: round(v, 1) for n, v in peaks.items()}}}


async def _transport(ctx: BenchContext) -> dict[str, Any]:
    """Documents/s through the no-op flow and messages/s through the raw chain of the
    same hops, interleaved round by round (the machine's noise hits both), the raw chain
    with its forwarders in one process and in one process each; medians of the rounds."""
    plan, runs = ctx.plan, {"bus": [], "raw": [], "raw_processes": []}
    hops = 2 * plan.noop_steps + 2
    for round_no in range(1, plan.transport_rounds + 1):
        ctx.log(f"transport {round_no}/{plan.transport_rounds}: {plan.transport_documents} "
                f"documents through {plan.noop_steps} no-op steps, then the raw chain of "
                f"{hops} hops in one process and in {hops}")
        rate, payload = await measure_bus_transport(ctx)
        runs["bus"].append(rate)
        for name, processes in (("raw", False), ("raw_processes", True)):
            runs[name].append(await measure_raw_transport(
                ctx.settings, hops, plan.transport_documents, payload, processes=processes))
    median = {name: round(statistics.median(rates), 1) for name, rates in runs.items()}
    return {"steps": plan.noop_steps, "hops": hops, "payload_bytes": payload,
            "documents": plan.transport_documents, "rounds": plan.transport_rounds,
            "bus_docs_per_s": median["bus"], "raw_docs_per_s": median["raw"],
            "raw_processes_docs_per_s": median["raw_processes"],
            "ratio": round(median["bus"] / median["raw"], 3),
            "ratio_processes": round(median["bus"] / median["raw_processes"], 3),
            "samples_docs_per_s": {n: [round(r, 1) for r in rates] for n, rates in runs.items()}}


async def _api_phase(ctx: BenchContext, env: dict[str, str]) -> dict[str, Any]:
    """``api``: the clients paced at ``api_rate`` (if any); ``api_saturation``: as fast
    as they are accepted."""
    plan, found = ctx.plan, {}
    if plan.api_rate > 0:
        ctx.log(f"API: {plan.api_clients} concurrent clients submit {plan.api_documents} "
                f"small documents, {plan.api_rate:g} a second together")
        found["api"] = await measure_api(ctx, env, clients=plan.api_clients,
                                         documents=plan.api_documents,
                                         workers=plan.api_workers, rate=plan.api_rate)
    ctx.log(f"API: {plan.api_clients} clients submit {plan.api_saturation_documents} small "
            "documents as fast as they are accepted")
    found["api_saturation"] = await measure_api(
        ctx, env, clients=plan.api_clients, documents=plan.api_saturation_documents,
        workers=plan.api_workers)
    return found


def run_bench(var_dir: Path, plan: BenchPlan, log: Log = print) -> dict[str, Any]:
    """Start a fresh stack and workers in ``var_dir``, run every phase, stop them."""
    started = time.monotonic()
    log = _stamped(log, started)
    var_dir.mkdir(parents=True, exist_ok=True)
    env = write_config(var_dir, plan)
    stack = EmbeddedStack(var_dir, broker_storage=plan.broker, metrics_port=free_ports(1)[0])
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
        metrics_url = f"http://127.0.0.1:{stack.metrics_port}/metrics"
        figures = asyncio.run(_phases(settings, plan, pids, inputs, log,
                                      env | {"DEMAT_VAR_DIR": str(var_dir)}, metrics_url))
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
    """(figure, value, target) rows of the summary table (of the phases that ran)."""
    found = [("broker log storage", report.get("broker", "s3"), "")]
    if "burst" in report:
        found.append(("burst flow", report.get("burst_flow", "bench-payslip"), ""))
    if t := report.get("transport"):
        found += _transport_rows(t)
    if b := report.get("burst"):
        found += _burst_rows(b)
    if m := report.get("memory"):
        found.append(("memory: peak RSS per process MB", f"{m['peak_rss_mb']}", "<= 300"))
        if "large_file_mb" in m:
            found.append(("memory: large file RSS growth MB",
                          f"{m['large_file_rss_growth_mb']} ({m['large_file_mb']} MB file)",
                          "< 64"))
    if lat := report.get("latency"):
        found.append(("latency p50 / p95 / p99 ms",
                      f"{lat['p50_ms']} / {lat['p95_ms']} / {lat['p99_ms']}", "p95 < 250"))
    return found + _api_rows(report)


def _transport_rows(t: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        ("transport: bus docs/s", f"{t['bus_docs_per_s']}", ""),
        ("transport: raw chain docs/s", f"{t['raw_docs_per_s']}", f"{t['hops']} hops"),
        ("transport: raw chain docs/s, a process per hop",
         f"{t.get('raw_processes_docs_per_s')}", f"medians of {t.get('rounds', 1)} rounds"),
        ("transport: ratio (one process / a process per hop)",
         f"{t['ratio']} / {t.get('ratio_processes')}", ">= 0.5 (goal 0.8)"),
    ]


def _burst_rows(b: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        ("burst: documents", f"{b['documents']} ({' -> '.join(b['steps'])})", ""),
        ("burst: seconds", f"{b['seconds']} (submitted in {b['submit_seconds']})", ""),
        ("burst: docs/s", f"{b['docs_per_s']} ({b['errors']} not completed, not counted)",
         ">= 100 (pay slip flow >= 50)"),
        ("burst: S3 requests / Kafka records per doc",
         f"{b.get('s3_per_doc')} / {b.get('kafka_per_doc')}", "4 (pay slip 6) / halved"),
        ("burst: CPU ms per doc, all processes", f"{b.get('cpu_ms_per_doc')}", ""),
        ("burst: CPU s by process", ", ".join(
            f"{n} {v}" for n, v in list(b["cpu_seconds_by_process"].items())[:5]), ""),
    ]


def _api_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    found = []
    if api := report.get("api"):
        found += [("API: submit p50 / p95 / p99 ms",
                   f"{api['p50_ms']} / {api['p95_ms']} / {api['p99_ms']} ({api['clients']} "
                   f"clients offering {api['offered_per_s']:g}/s, {api['documents']} "
                   f"documents, {api.get('workers', 1)} API processes, "
                   f"{api.get('api_cpu_ms_per_submit')} ms CPU each)", "p95 < 200"),
                  ("API: errors", f"{api['errors']}", "0")]
    if sat := report.get("api_saturation"):
        found += [("API: most submissions accepted a second",
                   f"{sat['submits_per_s']} ({sat['clients']} clients without pause, "
                   f"p50 {sat['p50_ms']} ms, {sat['errors']} errors)", "")]
    if con := report.get("console"):
        found += [("console: documents list p50 / p95 ms",
                   f"{con['list_p50_ms']} / {con['list_p95_ms']} ({con['documents']} "
                   f"documents; filtered {con['filtered_p95_ms']}, searched "
                   f"{con['search_p95_ms']}, API search {con['api_search_p95_ms']} p95)",
                   "< 300")]
    return found


def append_results(report: dict[str, Any], path: Path = RESULTS) -> None:
    """Append one line of figures to the results file (with its header when new)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(
            "# demat bench results\n\nOne line per `demat bench` run "
            "(`--quick`: 1,000-document burst, 128 MB file).\n\n" + TABLE_HEADER)
    t, b, m, lat = (report[k] for k in ("transport", "burst", "memory", "latency"))
    mc = report["machine"]
    line = (f"| {report['date']} | {report['commit']} | {mc['cores']} cores, "
            f"{mc['ram_gb']} GB | {report['mode']}, {report.get('broker', 's3')} broker, "
            f"flow {report.get('burst_flow', 'bench-payslip')} | "
            f"{t['bus_docs_per_s']}/{t['raw_docs_per_s']}/{t['raw_processes_docs_per_s']} "
            f"({t['ratio']}/{t['ratio_processes']}) | "
            f"{b['documents']}, {b['seconds']}, {b['docs_per_s']}, {b['errors']} | "
            f"{b['s3_per_doc']}, {b['kafka_per_doc']}, {b['cpu_ms_per_doc']} | "
            f"{m['peak_rss_mb']} | "
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
    s.add_argument("--only", choices=["api", "burst", "console"], help="run this phase "
                   "alone (api: the HTTP clients' submissions; burst: the burst of --flow; "
                   "console: the documents list with 100,000 documents); not recorded in "
                   "bench/results.md")
    s.add_argument("--api-clients", type=int, help="concurrent clients of the API phase "
                   "(default 200)")
    s.add_argument("--api-documents", type=int, help="documents the API phase's paced clients "
                   "submit (default 3,000, --quick 1,000)")
    s.add_argument("--api-rate", type=float, help="submissions a second the API phase's "
                   "clients offer together (default 100; 0: only the saturating run)")
    s.add_argument("--api-workers", type=int, default=1, help="demat serve --workers of the "
                   "API phase (default 1)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--keep", action="store_true", help="keep the bench var directory")
    s.add_argument("--no-record", action="store_true", help="do not append to bench/results.md")
    s.set_defaults(func=cmd_bench)


def cmd_bench(args: Any) -> int:
    err, out = Console(stderr=True), Console()
    plan = BenchPlan.quick() if args.quick else BenchPlan()
    if args.documents:
        plan.burst_documents = args.documents
    plan.broker, plan.burst_flow, plan.only = args.broker, args.flow, args.only
    plan.api_clients = args.api_clients or plan.api_clients
    plan.api_documents = args.api_documents or plan.api_documents
    plan.api_workers = args.api_workers
    plan.api_rate = plan.api_rate if args.api_rate is None else args.api_rate
    var_dir = (get_settings().var_dir / "bench" / time.strftime("%Y%m%d-%H%M%S")).resolve()
    try:
        report = run_bench(var_dir, plan, log=lambda m: err.print(f"[dim]{m}[/]"))
    finally:
        if not args.keep:
            shutil.rmtree(var_dir, ignore_errors=True)
    if not args.no_record and not args.only:
        append_results(report)
    if args.json:
        out.print_json(json.dumps(report))
    else:
        table = Table("figure", "value", "target", title=f"demat bench ({report['seconds']} s)")
        for row in rows(report):
            table.add_row(*row)
        out.print(table)
    return 0

"""``demat archive-bench``: a payroll-like burst through the whole bus into batch SIPs.

Run by hand (it starts its own embedded stack and workers in a fresh var directory):
N pay-slip-like documents of one tenant and period go through the document flow in
batch mode; the report says how many SIPs were sent, their sizes, whether every
document completed with its own archival identifier, and whether any SIP was sent twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from bus.client import DematClient
from bus.dev.embedded import EmbeddedStack
from bus.dev.launcher import Services, wait_until
from bus.settings import Settings, get_settings
from workers.common.demo import minimal_pdf

TENANT = "216900910"


def add_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("archive-bench", help="N pay-slip-like documents archived in batch SIPs "
                       "(own stack; prints figures)")
    s.add_argument("--documents", type=int, default=1000)
    s.add_argument("--max-documents", type=int, default=500, help="SIP bound (documents)")
    s.add_argument("--max-wait", type=float, default=240.0, help="seconds a batch stays open")
    s.add_argument("--timeout", type=float, default=1800.0)
    s.add_argument("--keep", action="store_true", help="keep the bench var directory")
    s.set_defaults(func=cmd_archive_bench)


def cmd_archive_bench(args: argparse.Namespace) -> int:
    var_dir = (get_settings().var_dir / "archive-bench" / time.strftime("%Y%m%d-%H%M%S")
               ).resolve()
    try:
        report = run_bench(var_dir, args.documents, args.max_documents, args.max_wait,
                           args.timeout)
    finally:
        if not args.keep:
            shutil.rmtree(var_dir, ignore_errors=True)
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


def _tenants_file(var_dir: Path, max_documents: int, max_wait: float) -> Path:
    raw = yaml.safe_load((Path(__file__).resolve().with_name("tenants.yaml"))
                         .read_text(encoding="utf-8"))
    for tenant in (t for t in raw["tenants"] if "archive" in t.get("settings", {})):
        tenant["settings"]["archive"]["batch"] = {"max_documents": max_documents,
                                                  "max_wait_seconds": max_wait}
    path = var_dir / "tenants.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def run_bench(var_dir: Path, documents: int, max_documents: int, max_wait: float,
              timeout: float) -> dict[str, Any]:
    """Start a stack, submit, wait, and measure."""
    var_dir.mkdir(parents=True, exist_ok=True)
    tenants = _tenants_file(var_dir, max_documents, max_wait)
    stack = EmbeddedStack(var_dir)
    services = Services(var_dir, env={"DEMAT_TENANTS_FILE": str(tenants)})
    settings = Settings(var_dir=var_dir, tenants_file=tenants)
    stack.start()
    try:
        services.start()
        wait_until(lambda: (var_dir / "simulators.json").exists(), 120)
        return asyncio.run(_burst(settings, var_dir, documents, max_documents, timeout))
    finally:
        services.stop()
        stack.stop()


async def _burst(settings: Settings, var_dir: Path, count: int, bound: int,
                 timeout: float) -> dict[str, Any]:
    period = f"2026-11-bench-{time.time_ns()}"
    inputs = var_dir / "inputs"
    inputs.mkdir(exist_ok=True)
    gate = asyncio.Semaphore(16)
    async with DematClient(settings, producer_name="archive-bench") as client:
        async def one(i: int) -> str:
            path = inputs / f"bp-{i:05d}.pdf"
            path.write_bytes(minimal_pdf(f"Bulletin de paie {i} {period}"))
            async with gate:
                return (await client.submit("document", [path], tenant=TENANT, metadata={
                    "title": f"Bulletin de paie {i:05d}", "category": "bulletin_paie",
                    "deposit": False, "archive_batch": period})).doc_id

        started = time.monotonic()
        ids = list(await asyncio.gather(*(one(i) for i in range(count))))
        submitted = time.monotonic() - started
        states = await asyncio.gather(*(client.wait(d, timeout, interval=2.0) for d in ids))
        finished = time.monotonic() - started
    outputs = [s.record("archive-batch").output if s else {} for s in states]
    sizes: dict[str, int] = {}
    for out in outputs:
        if out.get("batch"):
            sizes[out["batch"]] = out["batch_size"]
    sae = json.loads((var_dir / "simulators.json").read_text())["sae"]
    counts = httpx.get(f"{sae}/_sim/counts").json()
    completed = sum(1 for s in states if s and s.state.value == "completed")
    archival = {o.get("archival_id") for o in outputs if o.get("archival_id")}
    return {
        "documents": count, "completed": completed,
        "distinct_archival_ids": len(archival), "sips": len(sizes),
        "sip_sizes": sorted(sizes.values(), reverse=True), "sip_bound": bound,
        "sips_sent_twice": counts["duplicates"],
        "seconds_to_submit": round(submitted, 1), "seconds_to_all_terminal": round(finished, 1),
        "ok": completed == count and len(archival) == count
              and all(n <= bound for n in sizes.values()) and not counts["duplicates"],
    }

"""The payroll burst of ``demat bench --flow payslip``: a generated payroll run through
the real pay slip flow (index checked, files encrypted at rest, sealed, ENSAP lots,
batched archival), measured from the run's folder to every pay slip completed."""

from __future__ import annotations

from typing import Any

from bus.dev.bench_phases import BenchContext, timed_burst
from workers.payroll.ingest import FLOW, check_run, publish_run
from workers.payroll.sample import write_run

CHANNELS = "ensap"  # every pay slip of the run goes to ENSAP, as most employers do


def flow_steps(runtime: Any) -> list[str]:
    """The steps a pay slip sent to ENSAP only goes through."""
    skipped = {"agent-space", "secure-mail", "mail-receipt"}
    return [s.name for s in runtime.flows.get(FLOW).steps if s.name not in skipped]


async def measure(ctx: BenchContext, pids: dict[str, int]) -> dict[str, Any]:
    """Write a run of ``ctx.plan.burst_documents`` pay slips, ingest it, wait for the end."""
    count = ctx.plan.burst_documents
    folder = ctx.inputs / "payroll-run"
    write_run(folder, [CHANNELS] * count)
    runtime = ctx.client.runtime
    ctx.log(f"burst: payroll run of {count} pay slips through flow {FLOW}")

    async def ingest() -> list[str]:
        run = check_run(folder, folder / "index.csv", runtime.tenants)
        try:
            published = await publish_run(ctx.client, run)
        finally:
            run.close()
        return [r.doc_id for r in published.receipts]

    figures = await timed_burst(ctx, pids, ingest, "run checked and published")
    return {"flow": FLOW, "steps": flow_steps(runtime), **figures}

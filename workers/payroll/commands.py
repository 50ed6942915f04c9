"""``demat submit-batch``: publish a whole payroll run, or reject it with a report."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bus.client import DematClient
from bus.identity import Unauthenticated, cli_submitter
from bus.plugins import REGISTRY
from bus.runtime import Runtime
from bus.terminal import shown
from workers.payroll.ingest import (
    DEFAULT_LOT_SIZE,
    FLOW,
    Problem,
    RunRejected,
    check_run,
    publish_run,
)

console = Console(stderr=True, soft_wrap=True)
out = Console()


@REGISTRY.command
def add_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("submit-batch", help="submit a payroll run (folder or ZIP of pay slips "
                       "and its index); the whole run is rejected if anything is wrong")
    s.add_argument("flow", choices=[FLOW])
    s.add_argument("source", type=Path, help="folder or ZIP holding the PDFs")
    s.add_argument("--index", type=Path, help="index.csv or index.json (default: in the run)")
    s.add_argument("--tenant", help="SIREN of the tenant (default: the employers' SIREN)")
    s.add_argument("--lot-size", type=int, default=DEFAULT_LOT_SIZE,
                   help="pay slips per ENSAP lot")
    s.add_argument("--check", action="store_true", help="check only, publish nothing")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_submit_batch)


def cmd_submit_batch(args: argparse.Namespace) -> int:
    runtime = Runtime()
    started = time.monotonic()
    try:
        run = check_run(args.source, args.index, runtime.tenants, tenant=args.tenant,
                        lot_size=args.lot_size, work_dir=runtime.settings.var_dir / "tmp")
    except RunRejected as exc:
        return _rejected(exc.problems, args.json)
    try:
        if args.check:
            return _report({"run": run.run_id, "tenant": run.tenant, "pay_slips": len(run.rows),
                            "published": 0, "checked_only": True}, args.json)
        try:
            published = asyncio.run(_publish(runtime, run, quiet=args.json))
        except RunRejected as exc:
            return _rejected(exc.problems, args.json)
        except Unauthenticated as exc:
            console.print(f"[red]DEMAT_TOKEN: {exc}[/]")
            return 2
    finally:
        run.close()
    seconds = time.monotonic() - started
    return _report({"run": run.run_id, "tenant": run.tenant, "pay_slips": len(run.rows),
                    "published": len(run.rows) - published.already,
                    "already_submitted": published.already, "seconds": round(seconds, 2),
                    "lookup_seconds": published.lookup_seconds,
                    "publish_seconds": published.publish_seconds,
                    "ids": [r.doc_id for r in published.receipts]}, args.json)


async def _publish(runtime, run, *, quiet: bool):
    async with DematClient(runtime.settings, producer_name="payroll",
                           submitted_by=cli_submitter(runtime)) as client:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, disable=quiet) as bar:
            up = bar.add_task("uploaded ", total=len(run.rows))
            pub = bar.add_task("published", total=len(run.rows))

            def progress(phase: str, count: int) -> None:
                bar.advance(up if phase == "uploaded" else pub, count)

            return await publish_run(client, run, progress=progress)


def _rejected(problems: list[Problem], as_json: bool) -> int:
    if as_json:
        out.print_json(json.dumps({"rejected": True, "problems": [p.as_dict() for p in problems]},
                                  ensure_ascii=False))
        return 2
    table = Table("row", "file", "field", "problem", title="payroll run REJECTED: nothing "
                  "was published", title_style="bold red")
    for p in problems:
        table.add_row(str(p.row or ""), shown(p.file), shown(p.field), shown(p.message))
    out.print(table)
    console.print(f"[red]{len(problems)} problem(s); fix the run and submit it again.[/]")
    return 2


def _report(summary: dict, as_json: bool) -> int:
    if as_json:
        out.print_json(json.dumps(summary))
    else:
        rate = summary["published"] / summary["seconds"] if summary.get("seconds") else 0
        out.print(f"run {summary['run']}: {summary['pay_slips']} pay slips, "
                  f"{summary['published']} published"
                  + (f", {summary['already_submitted']} already submitted"
                     if summary.get("already_submitted") else "")
                  + (f" in {summary['seconds']} s ({rate:.0f}/s)" if "seconds" in summary
                     else " (checked only)"))
    return 0

"""``demat run|demo|chaos|stack|worker|simulators|check``: the bus and its embedded
stack (``bus.dev``), its service groups and its configuration."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import signal
import time
from typing import Any

import httpx
from rich.live import Live
from rich.table import Table

from bus.cli.console import console, fail, out, shown
from bus.client import DematClient
from bus.dev.chaos import ChaosPlan, report_json, run_chaos
from bus.dev.demo import follow, submit_demo
from bus.dev.embedded import EmbeddedStack
from bus.dev.launcher import Services
from bus.dev.simulators import serve_all
from bus.flows import FlowConfigError
from bus.runtime import Runtime
from bus.services import build_app
from bus.settings import Settings, get_settings


def add_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("run", help="start the embedded stack, workers and demo; serve")
    s.add_argument("--count", type=int, default=1, help="demo rounds to submit")
    s.add_argument("--no-demo", action="store_true")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("demo", help="submit the demo documents and wait for them")
    s.add_argument("--count", type=int, default=1)
    s.add_argument("--json", action="store_true")
    s.add_argument("--timeout", type=float, default=180.0)
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("chaos", help="documents through the bus while workers die and "
                       "partners fail; prove nothing lost or done twice")
    s.add_argument("--documents", type=int, default=500)
    s.add_argument("--kills", type=int, default=10)
    s.add_argument("--seed", type=int)
    s.add_argument("--keep", action="store_true", help="keep the chaos var directory")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_chaos)

    s = sub.add_parser("stack", help="embedded Kafka + S3 stack")
    s.add_argument("action", choices=["up", "down", "status"])
    s.set_defaults(func=cmd_stack)

    s = sub.add_parser("worker", help="run service groups (intake, router, steps, journal)")
    s.add_argument("groups", nargs="+")
    s.add_argument("--kinds", nargs="*", help="only these step kinds (with group steps)")
    s.set_defaults(func=cmd_worker)

    s = sub.add_parser("simulators", help="serve the partner simulators (embedded demo)")
    s.set_defaults(func=cmd_simulators)

    s = sub.add_parser("check", help="validate flows and tenants configuration")
    s.set_defaults(func=cmd_check)


def _stack(settings: Settings):
    return EmbeddedStack(settings.var_dir)


def cmd_stack(args: argparse.Namespace) -> int:
    stack = _stack(get_settings())
    if args.action == "up":
        info = stack.start()
        out.print_json(json.dumps(info))
    elif args.action == "down":
        stack.stop()
    else:
        alive = stack.running()
        out.print_json(json.dumps({"running": alive, **stack.info}))
        return 0 if alive else 1
    return 0


def cmd_worker(args: argparse.Namespace) -> int:

    settings = get_settings()
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        app = build_app(Runtime(settings), args.groups, args.kinds)
    except (ValueError, KeyError) as exc:
        kind = "configuration error" if isinstance(exc, FlowConfigError) else "error"
        console.print(f"[red]{kind}:[/] {shown(exc)}")
        return 2
    asyncio.run(app.run())
    return 0


def cmd_chaos(args: argparse.Namespace) -> int:

    settings = get_settings()
    var_dir = (settings.var_dir / "chaos" / time.strftime("%Y%m%d-%H%M%S")).resolve()
    plan = ChaosPlan(documents=args.documents, kills=args.kills, seed=args.seed)
    report = run_chaos(var_dir, plan, log=lambda m: console.print(f"[dim]{m}[/]"))
    if not args.keep:
        shutil.rmtree(var_dir, ignore_errors=True)
    if args.json:
        out.print(report_json(report))
    else:
        table = Table("figure", "value", title="demat chaos")
        for key, value in json.loads(report_json(report)).items():
            table.add_row(key, str(value))
        out.print(table)
    return 0 if report.ok else 1


def cmd_simulators(args: argparse.Namespace) -> int:
    settings = get_settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    serve_all(settings.var_dir)
    return 0


class _Embedded:
    """Starts what is not running yet (stack, workers) and stops only that."""

    def __init__(self, settings: Settings) -> None:
        self.stack = _stack(settings)
        self.services = Services(settings.var_dir)
        self.started_stack = self.started_services = self.started_api = False

    def up(self) -> None:
        if not self.stack.running():
            console.print("[dim]starting embedded stack (SeaweedFS S3 + Tansu Kafka)…[/]")
            self.stack.start()
            self.started_stack = True
        if self.services.running():
            return
        if self.services.adopt():  # another command's workers, some dead: restart those
            for group in self.services.supervise():
                console.print(f"[yellow]worker {group} was not running: restarted[/]")
            return
        console.print("[dim]starting workers (intake, router, steps, journal, delays, webhooks...) "
                      "and partner simulators…[/]")
        self.services.start()
        self.started_services = True

    def start_api(self) -> None:
        """Start the HTTP API (``demat serve``) unless it answers already."""
        if not _answers(self.api_url):
            if not self.started_services:  # keep the other processes' record
                self.services.adopt()
            self.services.start_group("api")
            self.started_api = True

    @property
    def api_url(self) -> str:
        settings = get_settings()
        return f"http://{settings.api_host}:{settings.api_port}"

    def down(self) -> None:
        if self.started_api and not self.started_services:
            self.services.stop_group("api")
        if self.started_services:
            self.services.stop()
        if self.started_stack:
            self.stack.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _demo_table(rows: list[dict]) -> Table:
    table = Table(title="demat-bus demo documents")
    for col in ("id", "flow", "tenant", "document", "state", "step / error"):
        table.add_column(col)
    colours = {"completed": "green", "error": "red", "rejected": "red", "running": "yellow"}
    for r in rows:
        colour = colours.get(r["state"], "white")
        table.add_row(r["id"], r["flow"], r["tenant"], r["label"],
                      f"[{colour}]{r['state']}[/]", r["error"] or r["step"] or "")
    done = sum(r["terminal"] for r in rows)
    table.caption = f"{done}/{len(rows)} finished"
    return table


async def _run_demo(settings: Settings, count: int, timeout: float, live: bool) -> list[dict]:
    async with DematClient(settings, producer_name="demo") as client:
        rows = await submit_demo(client, count, settings.var_dir / "demo")
        if not live:
            return await follow(client, rows, timeout)
        with Live(_demo_table(rows), console=console, refresh_per_second=4) as view:
            return await follow(client, rows, timeout, lambda r: view.update(_demo_table(r)))


def cmd_demo(args: argparse.Namespace) -> int:
    settings = get_settings()
    env = _Embedded(settings)
    try:
        env.up()
        rows = asyncio.run(_run_demo(settings, args.count, args.timeout, live=not args.json))
    finally:
        env.down()
    if args.json:
        keys = ("id", "flow", "tenant", "label", "state", "step", "error")
        out.print_json(json.dumps([{k: r[k] for k in keys} for r in rows]))
    return 0 if all(r["state"] == "completed" for r in rows) else 1


def cmd_run(args: argparse.Namespace) -> int:
    settings = get_settings()
    env = _Embedded(settings)
    stop = False

    def _stop(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        env.up()
        env.start_api()
        if not args.no_demo:
            rows = asyncio.run(_run_demo(settings, args.count, 300.0, live=True))
            done = sum(r["state"] == "completed" for r in rows)
            console.print(f"[bold]{done}/{len(rows)} demo documents completed.[/]")
        info = env.stack.load()
        console.print(f"bus serving: Kafka {info.get('kafka')}, S3 {info.get('s3')}, "
                      f"data in {settings.var_dir}/ — Ctrl-C to stop")
        console.print(f"HTTP API: {env.api_url}/v1 (docs {env.api_url}/docs; tokens: "
                      "demat users add, demat tokens create)")
        while not stop:
            restarted = env.services.supervise() if env.started_services else []
            for group in restarted:
                console.print(f"[yellow]worker {group} died, restarted[/]")
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        console.print("[dim]stopping…[/]")
        env.down()
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    runtime = Runtime()
    try:
        runtime.check()
    except (ValueError, KeyError) as exc:
        return fail(str(exc))
    out.print(f"flows {', '.join(runtime.flows.names())}: OK for "
              f"{sum(1 for _ in runtime.tenants)} tenants")
    return 0

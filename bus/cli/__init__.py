"""``demat``: the command line of the bus (operators, archivists, producers)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from bus.cli import audit as audit_commands
from bus.dev import archive_bench as archive_commands
from bus.dev import bench
from bus.settings import Settings, get_settings
from workers.actes import commands as acte_commands
from workers.finance import importer as invoice_commands
from workers.payroll import commands as payroll_commands

console = Console(stderr=True, soft_wrap=True)
out = Console()


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130


# --- parser -----------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="demat", description="demat-bus command line")
    sub = p.add_subparsers(metavar="COMMAND")

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

    s = sub.add_parser("submit", help="submit a document")
    s.add_argument("flow")
    s.add_argument("files", nargs="+", type=Path)
    s.add_argument("--tenant", required=True, help="SIREN of the tenant")
    s.add_argument("--meta", action="append", default=[], metavar="K=V")
    s.add_argument("--meta-file", type=Path)
    s.add_argument("--key", help="producer idempotency key")
    s.add_argument("--sha256", action="append", default=[],
                   help="expected digest of each file, in order")
    s.add_argument("--wait", action="store_true", help="wait for a terminal state")
    s.add_argument("--timeout", type=float, default=120.0)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_submit)

    s = sub.add_parser("status", help="a document's state")
    s.add_argument("id")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("journal", help="a document's journal")
    s.add_argument("id")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_journal)

    s = sub.add_parser("list", help="documents known to the index")
    s.add_argument("--tenant")
    s.add_argument("--flow")
    s.add_argument("--state")
    s.add_argument("--limit", type=int, default=50)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("export", help="write every artefact of a document to a folder")
    s.add_argument("id")
    s.add_argument("--dir", type=Path, required=True)
    s.set_defaults(func=cmd_export)

    _dlq_parser(sub)
    bench.add_commands(sub)
    archive_commands.add_commands(sub)
    acte_commands.add_commands(sub)
    invoice_commands.add_commands(sub)
    audit_commands.add_commands(sub)
    payroll_commands.add_commands(sub)

    s = sub.add_parser("check", help="validate flows and tenants configuration")
    s.set_defaults(func=cmd_check)
    return p


# --- stack and services -----------------------------------------------------------


def _stack(settings: Settings):
    from bus.dev.embedded import EmbeddedStack

    return EmbeddedStack(settings.var_dir, settings.s3_access_key, settings.s3_secret_key)


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
    import logging

    from bus.flows import FlowConfigError
    from bus.runtime import Runtime
    from bus.services import build_app

    settings = get_settings()
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        app = build_app(Runtime(settings), args.groups, args.kinds)
    except (ValueError, KeyError) as exc:
        kind = "configuration error" if isinstance(exc, FlowConfigError) else "error"
        console.print(f"[red]{kind}:[/] {exc}")
        return 2
    asyncio.run(app.run())
    return 0


def cmd_chaos(args: argparse.Namespace) -> int:
    import shutil

    from bus.dev.chaos import ChaosPlan, report_json, run_chaos

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
    from bus.dev.simulators import serve_all

    settings = get_settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    serve_all(settings.var_dir)
    return 0


class _Embedded:
    """Starts what is not running yet (stack, workers) and stops only that."""

    def __init__(self, settings: Settings) -> None:
        from bus.dev.launcher import Services

        self.stack = _stack(settings)
        self.services = Services(settings.var_dir)
        self.started_stack = self.started_services = False

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
        console.print("[dim]starting workers (intake, router, steps, journal, delays) "
                      "and partner simulators…[/]")
        self.services.start()
        self.started_services = True

    def down(self) -> None:
        if self.started_services:
            self.services.stop()
        if self.started_stack:
            self.stack.stop()


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
    from bus.client import DematClient
    from bus.dev.demo import follow, submit_demo

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
        if not args.no_demo:
            rows = asyncio.run(_run_demo(settings, args.count, 300.0, live=True))
            done = sum(r["state"] == "completed" for r in rows)
            console.print(f"[bold]{done}/{len(rows)} demo documents completed.[/]")
        info = env.stack.load()
        console.print(f"bus serving: Kafka {info.get('kafka')}, S3 {info.get('s3')}, "
                      f"data in {settings.var_dir}/ — Ctrl-C to stop")
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


# --- dead letters -----------------------------------------------------------------


def _dlq_parser(sub: argparse._SubParsersAction) -> None:
    dlq = sub.add_parser("dlq", help="dead-letter queue: list, show, replay, discard")
    cmds = dlq.add_subparsers(metavar="ACTION", required=True)

    def filters(p: argparse.ArgumentParser) -> None:
        for name in ("tenant", "flow", "step", "error"):
            p.add_argument(f"--{name}")
        p.add_argument("--since", help="ISO date or datetime")

    s = cmds.add_parser("list", help="open dead letters")
    filters(s)
    s.add_argument("--status", default="open", help="open, replayed, discarded or all")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_dlq_list)

    s = cmds.add_parser("show", help="one dead letter with its full context")
    s.add_argument("id")
    s.set_defaults(func=cmd_dlq_show)

    s = cmds.add_parser("replay", help="resume documents at their failed step")
    s.add_argument("ids", nargs="*")
    s.add_argument("--all", action="store_true", help="every open letter matching the filters")
    filters(s)
    s.add_argument("--from-step")
    s.add_argument("--rate", type=float, default=10.0, help="replays per second")
    s.add_argument("--dry-run", action="store_true")
    s.add_argument("--actor", help="who acts (default user@host)")
    s.set_defaults(func=cmd_dlq_replay)

    s = cmds.add_parser("discard", help="close dead letters without replaying them")
    s.add_argument("ids", nargs="+")
    s.add_argument("--reason", required=True)
    s.add_argument("--actor")
    s.set_defaults(func=cmd_dlq_discard)


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in ("tenant", "flow", "step", "error", "since")}


def _desk():
    from bus.operator import DeadLetterDesk
    from bus.runtime import Runtime

    return DeadLetterDesk(Runtime())


def cmd_dlq_list(args: argparse.Namespace) -> int:
    status = None if args.status == "all" else args.status
    rows = _desk().index.dead_letters(**_filters(args), status=status)
    if args.json:
        out.print_json(json.dumps(rows, ensure_ascii=False))
        return 0
    table = Table("id", "document", "tenant", "flow", "step", "error", "attempts", "at",
                  "status")
    for r in rows:
        table.add_row(r["id"], r["doc_id"] or "(undecodable)", r["tenant"] or "",
                      r["flow"] or "", r["step"] or "", f"{r['error_class']}: {r['message'][:60]}",
                      str(r["attempts"]), r["at"], r["status"])
    out.print(table)
    return 0


def cmd_dlq_show(args: argparse.Namespace) -> int:
    letter = _desk().index.dead_letter(args.id)
    if letter is None:
        return _fail(f"no dead letter {args.id}")
    out.print_json(json.dumps(letter, ensure_ascii=False))
    return 0


def _chosen(desk, args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.ids and getattr(args, "all", False):
        raise ValueError("give dead-letter ids or --all, not both")
    if not args.ids and not getattr(args, "all", False):
        raise ValueError("give dead-letter ids, or --all with filters")
    return desk.find(args.ids or None, _filters(args) if not args.ids else {})


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    from bus.operator import default_actor

    desk = _desk()
    try:
        letters = _chosen(desk, args)
    except (KeyError, ValueError) as exc:
        return _fail(str(exc.args[0]))
    if args.dry_run:
        for r in letters:
            out.print(f"would replay {r['id']} (document {r.get('doc_id')}, step {r.get('step')})")
        return 0
    count = asyncio.run(desk.replay(letters, actor=args.actor or default_actor(),
                                    from_step=args.from_step, rate=args.rate))
    out.print(f"{count} dead letter(s) replayed")
    return 0


def cmd_dlq_discard(args: argparse.Namespace) -> int:
    from bus.operator import default_actor

    desk = _desk()
    try:
        letters = _chosen(desk, args)
    except (KeyError, ValueError) as exc:
        return _fail(str(exc.args[0]))
    count = asyncio.run(desk.discard(letters, actor=args.actor or default_actor(),
                                     reason=args.reason))
    out.print(f"{count} dead letter(s) discarded")
    return 0


# --- producer and operator commands -------------------------------------------------


def _metadata(args: argparse.Namespace) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if args.meta_file:
        try:
            meta = json.loads(args.meta_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SystemExit(_fail(f"--meta-file {args.meta_file}: {exc.strerror}")) from None
        except json.JSONDecodeError as exc:
            msg = f"--meta-file {args.meta_file}: malformed JSON: {exc}"
            raise SystemExit(_fail(msg)) from None
        if not isinstance(meta, dict):
            raise SystemExit(_fail(f"--meta-file {args.meta_file}: must hold a JSON object"))
    for item in args.meta:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(_fail(f"--meta {item!r}: expected KEY=VALUE"))
        meta[key] = _meta_value(value)
    return meta


def _meta_value(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _fail(message: str) -> int:
    console.print(f"[red]error:[/] {message}")
    return 2


def cmd_submit(args: argparse.Namespace) -> int:
    from bus.client import DematClient, FileInput
    from bus.intake import SubmissionError

    meta = _metadata(args)
    if args.sha256 and len(args.sha256) != len(args.files):
        return _fail("--sha256: give one digest per file, in order")
    digests = args.sha256 or [None] * len(args.files)
    files = [FileInput(p, sha256=d) for p, d in zip(args.files, digests, strict=True)]

    async def go() -> tuple[Any, Any]:
        async with DematClient(producer_name="cli") as client:
            receipt = await client.submit(args.flow, files, tenant=args.tenant,
                                          metadata=meta, key=args.key)
            state = await client.wait(receipt.doc_id, args.timeout) if args.wait else None
            return receipt, state

    try:
        receipt, state = asyncio.run(go())
    except SubmissionError as exc:
        return _fail(str(exc))
    result = {"id": receipt.doc_id, "duplicate": receipt.duplicate,
              "state": state.state.value if state else "submitted"}
    if args.json:
        out.print_json(json.dumps(result))
    else:
        note = " (already submitted with this key)" if receipt.duplicate else ""
        out.print(f"{receipt.doc_id} {result['state']}{note}")
    return 0 if state is None or state.state.value == "completed" else 1


def _load_state(doc_id: str):
    from bus.runtime import Runtime
    from bus.state import StateStore

    runtime = Runtime()
    return runtime, StateStore(runtime.store, cache_size=0).load_sync(doc_id)


def cmd_status(args: argparse.Namespace) -> int:
    _, state = _load_state(args.id)
    if state is None:
        return _fail(f"no document {args.id} on this bus (or not yet accepted)")
    if args.json:
        out.print_json(state.model_dump_json())
        return 0
    env = state.envelope
    out.print(f"[bold]{state.doc_id}[/]  {env.flow if env else '?'}  tenant "
              f"{env.tenant if env else '?'}  [bold]{state.state.value}[/]")
    if state.error:
        out.print(f"[red]{state.error.error_class}[/] {state.error.field or ''} "
                  f"{state.error.message}")
    table = Table("step", "status", "attempts", "finished", "output")
    for rec in state.steps:
        table.add_row(rec.name, rec.status, str(rec.attempts),
                      rec.finished_at.isoformat(timespec="seconds") if rec.finished_at else "",
                      json.dumps(rec.output, ensure_ascii=False)[:80])
    out.print(table)
    for step, key, value in _facts(state):
        out.print(f"{key}: [bold]{value}[/]  ({step})")
    return 0


def _facts(state) -> list[tuple[str, str, str]]:
    """Identifiers and dates the steps recorded (``*_id``, ``*_at`` of their outputs)."""
    return [(rec.name, key, str(value)) for rec in state.steps if rec.status == "done"
            for key, value in rec.output.items()
            if isinstance(value, str | int) and not isinstance(value, bool)
            and key.endswith(("_id", "_at"))]


def cmd_journal(args: argparse.Namespace) -> int:
    from bus.index import Index

    events = Index(get_settings().index_file).events(args.id)
    if not events:
        return _fail(f"no journal events for {args.id}")
    if args.json:
        out.print_json(json.dumps(events, ensure_ascii=False))
        return 0
    table = Table("seq", "at", "event", "state", "step", "actor")
    for e in events:
        table.add_row(str(e["seq"]), e["at"], e["type"], e["state"], e["step"] or "",
                      e["actor"])
    out.print(table)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from bus.index import Index

    docs = Index(get_settings().index_file).documents(
        tenant=args.tenant, flow=args.flow, state=args.state, limit=args.limit)
    if args.json:
        out.print_json(json.dumps(docs))
        return 0
    table = Table("id", "tenant", "flow", "state", "step", "updated")
    for d in docs:
        table.add_row(d["id"], d["tenant"] or "", d["flow"] or "", d["state"], d["step"] or "",
                      d["updated_at"])
    out.print(table)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from bus.export import export_document
    from bus.runtime import Runtime

    try:
        manifest = export_document(Runtime(), args.id, args.dir)
    except KeyError as exc:
        return _fail(str(exc.args[0]))
    out.print(f"{len(manifest['files'])} files written to {args.dir}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from bus.runtime import Runtime

    runtime = Runtime()
    try:
        runtime.check()
    except (ValueError, KeyError) as exc:
        return _fail(str(exc))
    out.print(f"flows {', '.join(runtime.flows.names())}: OK for "
              f"{sum(1 for _ in runtime.tenants)} tenants")
    return 0


if __name__ == "__main__":
    sys.exit(main())

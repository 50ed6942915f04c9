"""``demat submit|status|journal|list|export|asyncapi``: producers' and operators'
commands about documents."""

from __future__ import annotations

import argparse
import asyncio
import json
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from bus.asyncapi import asyncapi_document
from bus.cli.console import fail, out, shown
from bus.client import DematClient, FileInput
from bus.export import export_document
from bus.identity import Unauthenticated, cli_submitter
from bus.index import Index
from bus.intake import MAX_JSON_DEPTH, SubmissionError, check_json_depth, loads_metadata
from bus.runtime import Runtime
from bus.settings import get_settings


def add_commands(sub: argparse._SubParsersAction) -> None:
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

    s = sub.add_parser("asyncapi", help="the AsyncAPI document of the topics producers and "
                       "consumers use directly (JSON)")
    s.add_argument("--out", type=Path, help="write it to this file instead of stdout")
    s.set_defaults(func=cmd_asyncapi)


def _metadata(args: argparse.Namespace) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if args.meta_file:
        try:
            meta = loads_metadata(args.meta_file.read_bytes())
        except OSError as exc:
            raise SystemExit(fail(f"--meta-file {args.meta_file}: {exc.strerror}")) from None
        except SubmissionError as exc:
            raise SystemExit(fail(f"--meta-file {args.meta_file}: {exc}")) from None
    for item in args.meta:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(fail(f"--meta {item!r}: expected KEY=VALUE"))
        meta[key] = _meta_value(value)
    return meta


def _meta_value(value: str) -> Any:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return value
    except RecursionError:
        raise SystemExit(fail(f"--meta: nested deeper than {MAX_JSON_DEPTH} levels")) from None
    try:
        check_json_depth(parsed, "--meta")
    except SubmissionError as exc:
        raise SystemExit(fail(str(exc))) from None
    return parsed


def cmd_submit(args: argparse.Namespace) -> int:
    meta = _metadata(args)
    if args.sha256 and len(args.sha256) != len(args.files):
        return fail("--sha256: give one digest per file, in order")
    digests = args.sha256 or [None] * len(args.files)
    files = [FileInput(p, sha256=d) for p, d in zip(args.files, digests, strict=True)]

    async def go() -> tuple[Any, Any]:
        async with DematClient(producer_name="cli") as client:
            client.submitted_by = cli_submitter(client.runtime)
            receipt = await client.submit(args.flow, files, tenant=args.tenant,
                                          metadata=meta, key=args.key)
            state = await client.wait(receipt.doc_id, args.timeout) if args.wait else None
            return receipt, state

    try:
        receipt, state = asyncio.run(go())
    except (SubmissionError, Unauthenticated) as exc:
        return fail(f"DEMAT_TOKEN: {exc}" if isinstance(exc, Unauthenticated) else str(exc))
    result = _outcome(receipt, state, args)
    if args.json:
        out.print_json(json.dumps(result))
    else:
        note = " (already submitted with this key)" if receipt.duplicate else ""
        reason = f": {result['reason']}" if result.get("reason") else ""
        out.print(f"{receipt.doc_id} {escape(result['state'])}{note}{escape(reason)}")
    if not args.wait:
        return 0
    return 0 if result["state"] == "completed" else 1


def _outcome(receipt: Any, state: Any, args: argparse.Namespace) -> dict[str, Any]:
    """What ``submit`` reports: the state reached (``--wait``), and why it is not
    ``completed`` when it is not (refusal, error with its dead letter, time-out)."""
    result: dict[str, Any] = {"id": receipt.doc_id, "duplicate": receipt.duplicate}
    if not args.wait:
        return result | {"state": "submitted"}
    if state is None:
        return result | {"state": "not-admitted", "reason": (
            f"no verdict from intake within {args.timeout:g} s (see demat status)")}
    result["state"] = state.state.value
    if not state.state.terminal:
        result["reason"] = f"still {state.state.value} after {args.timeout:g} s"
    elif state.error is not None:
        error = state.error
        where = f" ({error.field})" if error.field else ""
        result["reason"] = f"{error.error_class}{where}: {error.message}"
        result["error"] = {"class": error.error_class, "field": error.field,
                           "message": error.message}
    return result


def _load_state(doc_id: str):
    runtime = Runtime()
    return runtime, runtime.states.load_sync(doc_id)


def cmd_status(args: argparse.Namespace) -> int:
    _, state = _load_state(args.id)
    if state is None:
        return fail(f"no document {args.id} on this bus (or not yet accepted)")
    if args.json:
        out.print_json(state.model_dump_json(context={"clear": True}))
        return 0
    env = state.envelope
    out.print(f"[bold]{shown(state.doc_id)}[/]  {shown(env.flow if env else '?')}  tenant "
              f"{shown(env.tenant if env else '?')}  [bold]{state.state.value}[/]")
    if state.error:
        out.print(f"[red]{shown(state.error.error_class)}[/] {shown(state.error.field)} "
                  f"{shown(state.error.message)}")
    table = Table("step", "status", "attempts", "finished", "output")
    for rec in state.steps:
        table.add_row(shown(rec.name), shown(rec.status), str(rec.attempts),
                      rec.finished_at.isoformat(timespec="seconds") if rec.finished_at else "",
                      shown(json.dumps(rec.output, ensure_ascii=False)[:80]))
    out.print(table)
    for step, key, value in _facts(state):
        out.print(f"{shown(key)}: [bold]{shown(value)}[/]  ({shown(step)})")
    return 0


def _facts(state) -> list[tuple[str, str, str]]:
    """Identifiers and dates the steps recorded (``*_id``, ``*_at`` of their outputs)."""
    return [(rec.name, key, str(value)) for rec in state.steps if rec.status == "done"
            for key, value in rec.output.items()
            if isinstance(value, str | int) and not isinstance(value, bool)
            and key.endswith(("_id", "_at"))]


def cmd_journal(args: argparse.Namespace) -> int:
    events = Index(get_settings().database).events(args.id)
    if not events:
        return fail(f"no journal events for {args.id}")
    if args.json:
        out.print_json(json.dumps(events, ensure_ascii=False))
        return 0
    table = Table("seq", "at", "event", "state", "step", "actor")
    for e in events:
        table.add_row(str(e["seq"]), shown(e["at"]), shown(e["type"]), shown(e["state"]),
                      shown(e["step"]), shown(e["actor"]))
    out.print(table)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    docs = Index(get_settings().database).documents(
        tenant=args.tenant, flow=args.flow, state=args.state, limit=args.limit)
    if args.json:
        out.print_json(json.dumps(docs))
        return 0
    table = Table("id", "tenant", "flow", "state", "step", "updated")
    for d in docs:
        table.add_row(*(shown(d[k]) for k in ("id", "tenant", "flow", "state", "step",
                                               "updated_at")))
    out.print(table)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    try:
        manifest = export_document(Runtime(), args.id, args.dir)
    except KeyError as exc:
        return fail(str(exc.args[0]))
    out.print(f"{len(manifest['files'])} files written to {shown(args.dir)}")
    for use in manifest["versions_used"]:
        by = f" (made by step {shown(use['by_step'])})" if use["by_step"] else ""
        out.print(f"  step {shown(use['step'])}: {shown(use['version'])} "
                  f"{shown(use['file'])}{by}")
    return 0


def cmd_asyncapi(args: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        servers = {"bus": settings.bootstrap}
    except RuntimeError:  # no broker configured or running: the document names none
        servers = {}
    doc = asyncapi_document(Runtime(settings).topics, version=package_version("demat-bus"),
                            servers=servers)
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    if args.out is None:
        print(text)
    else:
        args.out.write_text(text + "\n", encoding="utf-8")
        out.print(f"AsyncAPI {doc['asyncapi']} document written to {args.out}")
    return 0

"""Archivists' commands: ``demat audit verify|export|reindex`` and ``demat search``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bus.audit.bundle import export_bundle
from bus.audit.config import key_hasher
from bus.audit.verify import verify_bus
from bus.backup import rebuild_index
from bus.cli.console import console, fail, shown
from bus.flows import FlowConfigError, FlowRegistry
from bus.index import Index
from bus.runtime import Runtime
from bus.search import declared_keys, query_keys

out = Console(soft_wrap=True)


def _search_flows() -> FlowRegistry | None:
    """The flows whose search keys become ``demat search`` options; ``None`` when they do
    not load (the CLI still starts, to report it: ``demat run`` names the faulty file)."""
    try:
        return Runtime().flows
    except FlowConfigError:
        return None


def add_commands(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser("audit", help="tamper-evident journal: verify, proof bundles")
    cmds = audit.add_subparsers(metavar="ACTION", required=True)
    s = cmds.add_parser("verify", help="check every chain, checkpoint, signature, "
                        "time-stamp and stored file")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_verify)
    s = cmds.add_parser("export", help="proof bundle of a document, verifiable offline")
    s.add_argument("id")
    s.add_argument("--dir", type=Path, required=True)
    s.set_defaults(func=cmd_export)
    s = cmds.add_parser("reindex", help="rebuild the search index from the sealed journal")
    s.set_defaults(func=cmd_reindex)

    s = sub.add_parser("search", help="documents by tenant, flow, state, dates, business keys")
    s.add_argument("--tenant")
    s.add_argument("--flow")
    s.add_argument("--state")
    s.add_argument("--since", help="submitted on or after (ISO date or datetime)")
    s.add_argument("--until", help="submitted before (ISO date or datetime)")
    flows = _search_flows()
    for key, names in declared_keys(flows).items() if flows else ():
        s.add_argument(f"--{key.replace('_', '-')}", dest=f"key_{key}", metavar="VALUE",
                       help=f"search key {key} ({', '.join(names)})")
    s.add_argument("--key", action="append", default=[], metavar="NAME=VALUE",
                   help="any search key a flow declares")
    s.add_argument("--limit", type=int, default=100)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_search)


def cmd_verify(args: argparse.Namespace) -> int:
    report = verify_bus(Runtime())
    if args.json:
        out.print_json(json.dumps(report.as_dict(), ensure_ascii=False))
        return 0 if report.ok else 1
    counts = ", ".join(f"{v} {k}" for k, v in report.counts.items())
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {shown(warning)}")
    if report.ok:
        out.print(f"[green]journal intact[/]: {counts}")
        return 0
    table = Table("where", "problem", title=f"{len(report.problems)} problem(s)")
    for p in report.problems:
        table.add_row(shown(p.where), shown(p.what))
    out.print(table)
    out.print(f"[red]TAMPERING OR LOSS DETECTED[/] ({counts})")
    return 1


def cmd_export(args: argparse.Namespace) -> int:
    try:
        result = export_bundle(Runtime(), args.id, args.dir)
    except (KeyError, ValueError) as exc:
        return fail(str(exc.args[0]))
    out.print(f"proof bundle of {args.id}: {result['events']} events in checkpoint "
              f"{result['checkpoint']}, written to {args.dir} (see README.md there)")
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    added = rebuild_index(Runtime())
    out.print(f"{added} events added to the index")
    return 0


def search_keys_of(args: argparse.Namespace) -> list[tuple[str, str]]:
    pairs = [(name.removeprefix("key_"), v) for name, v in sorted(vars(args).items())
             if name.startswith("key_") and v is not None]
    for item in args.key:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--key {item!r}: expected NAME=VALUE")
        pairs.append((name, value))
    return pairs


def cmd_search(args: argparse.Namespace) -> int:
    runtime = Runtime()
    settings = runtime.settings
    try:
        keys = query_keys(search_keys_of(args), runtime.flows, key_hasher(settings))
    except ValueError as exc:
        return fail(str(exc))
    rows = Index(settings.database).search(
        tenant=args.tenant, flow=args.flow, state=args.state, since=args.since,
        until=args.until, keys=keys, limit=args.limit)
    if args.json:
        out.print_json(json.dumps(rows))
        return 0
    table = Table("id", "tenant", "flow", "state", "submitted", "updated",
                  title=f"{len(rows)} document(s)")
    for r in rows:
        table.add_row(*(shown(r[k]) for k in ("id", "tenant", "flow", "state", "created_at",
                                               "updated_at")))
    out.print(table)
    return 0

"""Operators' commands: ``demat backup``, ``demat restore`` and ``demat purge``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bus.backup import BackupError, Outcome, backup, restore
from bus.cli.console import console, fail, out, shown
from bus.identity import cli_submitter
from bus.retention import RetentionError, Rules, candidates, purge_now
from bus.runtime import Runtime
from schemas.envelope import utcnow


def add_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("backup", help="what the bus cannot rebuild (buckets, tables, "
                       "configuration, key identifiers) to a new folder, with a manifest")
    s.add_argument("--to", type=Path, required=True, metavar="DIR")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_backup)
    s = sub.add_parser("restore", help="a backup folder into a new deployment (empty "
                       "buckets, fresh database), checked whole first; rebuilds the index")
    s.add_argument("--from", dest="source", type=Path, required=True, metavar="DIR")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_restore)
    s = sub.add_parser("purge", help="files and personal data of finished documents past "
                       "their retention (DEMAT_RETENTION_FILE), journaled as purged")
    s.add_argument("--dry-run", action="store_true", help="list them, change nothing")
    s.add_argument("--id", action="append", default=[], dest="ids", metavar="ID",
                   help="only these documents (still only if due)")
    s.add_argument("--reason", default="retention period over")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_purge)


def cmd_backup(args: argparse.Namespace) -> int:
    try:
        outcome = backup(Runtime(), args.to)
    except (BackupError, ValueError) as exc:
        return fail(str(exc))
    return _report(args, outcome, f"backup written to {args.to}")


def cmd_restore(args: argparse.Namespace) -> int:
    try:
        outcome = restore(Runtime(), args.source)
    except BackupError as exc:
        return fail(f"backup refused: {exc}")
    return _report(args, outcome, f"restored from {args.source}")


def _report(args: argparse.Namespace, outcome: Outcome, done: str) -> int:
    if args.json:
        out.print_json(json.dumps({"counts": outcome.counts, "warnings": outcome.warnings}))
        return 0
    for warning in outcome.warnings:
        console.print(f"[yellow]warning:[/] {shown(warning)}")
    out.print(f"[green]{shown(done)}[/]: {shown(json.dumps(outcome.counts))}")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    runtime = Runtime()
    try:
        rules = Rules.load(runtime.settings.retention_file)
    except RetentionError as exc:
        return fail(str(exc))
    if not rules.rules:
        console.print("[yellow]warning:[/] no retention rule (DEMAT_RETENTION_FILE): "
                      "every document is kept")
    found = [c for c in candidates(runtime, rules, utcnow())
             if not args.ids or c.doc_id in args.ids]
    result: dict = {"documents": [c.as_dict() for c in found], "dry_run": args.dry_run}
    if not args.dry_run and found:
        result |= purge_now(runtime, found, cli_submitter(runtime), args.reason)
    if args.json:
        out.print_json(json.dumps(result))
    else:
        for c in found:
            out.print(f"{shown(c.doc_id)}  {shown(c.flow)}  tenant {shown(c.tenant)}  "
                      f"{c.state}  due {c.due:%Y-%m-%d}  {c.files} file(s)")
        verb = "would be purged" if args.dry_run else "purged"
        out.print(f"{len(found)} document(s) {verb}"
                  + (f", {result['deleted_files']} file(s) deleted" if "deleted_files"
                     in result else ""))
    return 1 if result.get("not_purged") else 0

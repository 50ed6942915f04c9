"""Operators' commands: ``demat backup`` and ``demat restore``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bus.backup import BackupError, Outcome, backup, restore
from bus.cli.console import console, fail, out, shown
from bus.runtime import Runtime


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

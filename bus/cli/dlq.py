"""``demat dlq list|show|replay|discard``: the dead-letter queue, every action journaled
with its actor (``bus.operator``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any

from rich.table import Table

from bus.cli.console import fail, out, shown
from bus.identity import IdentityStore, Unauthenticated, cli_actor
from bus.operator import FILTERS, DeadLetterDesk, may_act
from bus.runtime import Runtime


def add_commands(sub: argparse._SubParsersAction) -> None:
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
    s.set_defaults(func=cmd_dlq_replay)

    s = cmds.add_parser("discard", help="close dead letters without replaying them")
    s.add_argument("ids", nargs="+")
    s.add_argument("--reason", required=True)
    s.set_defaults(func=cmd_dlq_discard)


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in FILTERS}


def acting_identity(desk: DeadLetterDesk, letters: list[dict[str, Any]], permission: str) -> str:
    """The acting identity (``DEMAT_TOKEN``, else the OS user); a token must hold
    ``permission`` on every letter's tenant (``bus.operator.may_act``)."""
    ids = IdentityStore.of(desk.runtime)
    actor = cli_actor(ids)
    who = ids.authenticate(os.environ["DEMAT_TOKEN"]) if os.environ.get("DEMAT_TOKEN") else None
    for letter in letters if who else ():
        tenant = letter.get("tenant")
        if not may_act(who, letter, permission, ids.tenants):
            raise PermissionError(f"DEMAT_TOKEN: {who.login} may not {permission} dead letter "
                                  f"{letter['id']} (tenant {tenant or 'unknown'})")
    return actor


def _desk():
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
        table.add_row(shown(r["id"]), shown(r["doc_id"] or "(undecodable)"), shown(r["tenant"]),
                      shown(r["flow"]), shown(r["step"]),
                      shown(f"{r['error_class']}: {r['message'][:60]}"),
                      str(r["attempts"]), shown(r["at"]), shown(r["status"]))
    out.print(table)
    return 0


def cmd_dlq_show(args: argparse.Namespace) -> int:
    letter = _desk().index.dead_letter(args.id)
    if letter is None:
        return fail(f"no dead letter {args.id}")
    out.print_json(json.dumps(letter, ensure_ascii=False))
    return 0


def _chosen(desk: DeadLetterDesk, args: argparse.Namespace) -> list[dict[str, Any]]:
    every = getattr(args, "all", False)
    if args.ids and every:
        raise ValueError("give dead-letter ids or --all, not both")
    if not args.ids and not every:
        raise ValueError("give dead-letter ids, or --all with filters")
    return desk.select(args.ids or None, _filters(args) if every else None)


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    desk = _desk()
    try:
        letters = _chosen(desk, args)
    except (KeyError, ValueError) as exc:
        return fail(str(exc.args[0]))
    if args.dry_run:
        for r in letters:
            out.print(f"would replay {shown(r['id'])} (document {shown(r.get('doc_id'))}, "
                      f"step {shown(r.get('step'))})")
        return 0
    try:
        actor = acting_identity(desk, letters, "replay")
    except (Unauthenticated, PermissionError) as exc:
        return fail(str(exc))
    try:
        count = asyncio.run(desk.replay(letters, actor=actor,
                                        from_step=args.from_step, rate=args.rate))
    except ValueError as exc:
        return fail(str(exc))
    out.print(f"{count} dead letter(s) replayed")
    return 0


def cmd_dlq_discard(args: argparse.Namespace) -> int:
    desk = _desk()
    try:
        letters = _chosen(desk, args)
    except (KeyError, ValueError) as exc:
        return fail(str(exc.args[0]))
    try:
        actor = acting_identity(desk, letters, "discard")
    except (Unauthenticated, PermissionError) as exc:
        return fail(str(exc))
    try:
        count = asyncio.run(desk.discard(letters, actor=actor, reason=args.reason))
    except ValueError as exc:
        return fail(str(exc))
    out.print(f"{count} dead letter(s) discarded")
    return 0

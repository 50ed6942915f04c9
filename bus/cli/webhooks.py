"""``demat webhooks add|list|remove|deliveries|redeliver``: tenants' push subscriptions
(``bus.webhooks``); their dead letters are redelivered through the DLQ desk."""

from __future__ import annotations

import argparse
import asyncio
import json

from rich.table import Table

from bus.cli.console import fail, out, shown
from bus.cli.dlq import acting_identity
from bus.identity import Unauthenticated
from bus.operator import DeadLetterDesk
from bus.runtime import Runtime
from bus.webhooks.delivery import delivered
from bus.webhooks.events import EVENT_TYPES
from bus.webhooks.subscriptions import SHAPES, SubscriptionStore


def add_commands(sub: argparse._SubParsersAction) -> None:
    hooks = sub.add_parser("webhooks", help="webhook subscriptions: add, list, remove, "
                                            "deliveries, redeliver")
    cmds = hooks.add_subparsers(metavar="ACTION", required=True)

    s = cmds.add_parser("add", help="subscribe a URL to a tenant's events (prints the "
                                    "secret once)")
    s.add_argument("--tenant", required=True, help="SIREN")
    s.add_argument("--url", required=True)
    s.add_argument("--events", required=True,
                   help=f"comma-separated types or globs: {', '.join(EVENT_TYPES)}, *")
    s.add_argument("--flows", default="", help="comma-separated flows (default: every flow)")
    s.add_argument("--shape", choices=SHAPES, default="native",
                   help="bodies: the bus's own, or what a Pastell client polls for "
                        "(documents made through the Pastell door)")
    s.set_defaults(func=cmd_add)

    s = cmds.add_parser("list", help="subscriptions (secrets are never shown again)")
    s.add_argument("--tenant")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_list)

    s = cmds.add_parser("remove", help="delete a subscription")
    s.add_argument("id")
    s.set_defaults(func=cmd_remove)

    s = cmds.add_parser("deliveries", help="events a subscription's receiver acknowledged")
    s.add_argument("id")
    s.set_defaults(func=cmd_deliveries)

    s = cmds.add_parser("redeliver", help="send dead-lettered deliveries again")
    s.add_argument("ids", nargs="*", help="dead-letter ids")
    s.add_argument("--subscription", help="every open dead letter of this subscription")
    s.set_defaults(func=cmd_redeliver)


def _subs() -> SubscriptionStore:
    return SubscriptionStore(Runtime().store)


def cmd_add(args: argparse.Namespace) -> int:
    runtime = Runtime()
    if args.tenant not in runtime.tenants:
        return fail(f"tenant: {args.tenant} is not a tenant of this bus")
    flows = [f.strip() for f in args.flows.split(",") if f.strip()]
    unknown = [f for f in flows if f not in runtime.flows.names()]
    if unknown:
        return fail(f"flows: {', '.join(unknown)} is not a flow of this bus")
    try:
        sub = SubscriptionStore(runtime.store).add(args.tenant, args.url,
                                                   args.events.split(","), flows,
                                                   args.shape)
    except ValueError as exc:
        return fail(str(exc))
    out.print_json(json.dumps(sub.model_dump(mode="json") | {"secret": sub.secret}))
    out.print("[yellow]keep the secret now: it is never shown again[/]")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    subs = [s.model_dump(mode="json") for s in _subs().list(args.tenant)]
    if args.json:
        out.print_json(json.dumps(subs))
        return 0
    table = Table("id", "tenant", "url", "events", "flows", "active", "created")
    for s in subs:
        table.add_row(shown(s["id"]), shown(s["tenant"]), shown(s["url"]),
                      shown(",".join(s["event_types"])), shown(",".join(s["flows"]) or "*"),
                      str(s["active"]), shown(s["created_at"]))
    out.print(table)
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    try:
        sub = _subs().remove(args.id)
    except KeyError as exc:
        return fail(str(exc.args[0]))
    out.print(f"webhook subscription {sub.id} ({sub.url}) removed")
    return 0


def cmd_deliveries(args: argparse.Namespace) -> int:
    out.print_json(json.dumps(delivered(Runtime().store, args.id)))
    return 0


def cmd_redeliver(args: argparse.Namespace) -> int:
    desk = DeadLetterDesk(Runtime())
    if bool(args.ids) == bool(args.subscription):
        return fail("give dead-letter ids or --subscription, not both nor neither")
    try:
        letters = desk.find(args.ids or None, {} if args.ids else
                            {"flow": "webhook", "step": args.subscription})
    except (KeyError, ValueError) as exc:
        return fail(str(exc.args[0]))
    if any(r.get("flow") != "webhook" for r in letters):
        return fail("not a webhook dead letter: use `demat dlq replay`")
    try:
        actor = acting_identity(desk, letters, "replay")
    except (PermissionError, Unauthenticated) as exc:
        return fail(str(exc))
    count = asyncio.run(desk.replay(letters, actor=actor))
    out.print(f"{count} webhook deliver(y/ies) sent again")
    return 0

"""``demat health GROUP`` (a container's liveness or readiness) and ``demat doctor``."""

from __future__ import annotations

import argparse
import json
import socket

from bus.cli.console import out, shown
from bus.doctor import diagnose
from bus.health import Check, assignment, liveness, reachability
from bus.runtime import Runtime
from bus.services import service_groups
from bus.settings import get_settings


def add_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("health", help="is this host's process of a service group live "
                       "(--ready: and reaching broker, store, index, with partitions)?")
    s.add_argument("group")
    s.add_argument("--ready", action="store_true")
    s.add_argument("--any-host", action="store_true", help="a process on any host counts")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_health)
    s = sub.add_parser("doctor", help="check the deployment end to end, in words")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_doctor)


def cmd_health(args: argparse.Namespace) -> int:
    settings = get_settings()
    host = None if args.any_host else socket.gethostname()
    checks = [liveness(settings, args.group, host)]
    if args.ready and checks[0].ok:
        checks += [assignment(settings, args.group, host), *reachability(settings)]
    return _report(checks, args.json)


def cmd_doctor(args: argparse.Namespace) -> int:
    runtime = Runtime()
    return _report(diagnose(runtime, list(service_groups(runtime))), args.json)


def _report(checks: list[Check], as_json: bool) -> int:
    ok = all(c.ok for c in checks)
    if as_json:
        out.print_json(json.dumps({"ok": ok, "checks": [c.as_dict() for c in checks]}))
        return 0 if ok else 1
    for c in checks:
        mark = "[red]FAIL[/]" if not c.ok else "[yellow]warn[/]" if c.warning else "[green]ok[/]"
        out.print(f"{mark}  {shown(c.name)}: {shown(c.detail)}")
    return 0 if ok else 1

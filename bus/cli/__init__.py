"""``demat``: the command line of the bus (operators, archivists, producers).

Each module of this package adds its commands (``add_commands``); the flow families
add theirs through the plug-in registry (``bus.plugins``).
"""

from __future__ import annotations

import argparse
import os

from bus.cli import (
    audit,
    dlq,
    documents,
    glaneur,
    health,
    identity,
    inspect,
    ops,
    stack,
    webhooks,
)
from bus.dev import archive_bench, bench
from bus.plugins import load_plugins
from bus.settings import get_settings
from connectors.private import PRIVATE_UMASK


def main(argv: list[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)  # what the bus writes (var/, exports) only its user reads
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="demat", description="demat-bus command line")
    sub = p.add_subparsers(metavar="COMMAND")
    for module in (stack, documents, dlq, identity, webhooks, bench, archive_bench, audit,
                   inspect, glaneur, ops, health):
        module.add_commands(sub)
    for add_commands in load_plugins(get_settings().plugin_modules).commands:
        add_commands(sub)
    return p

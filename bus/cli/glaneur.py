"""``demat glaneur``: glean the drop folders of a settings file into the Pastell door."""

from __future__ import annotations

import argparse
from pathlib import Path

from bus.glaneur.service import serve


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, required=True, help="the glaneurs' YAML file")
    p.add_argument("--every", type=float, default=0, help="seconds between runs (default 0: "
                   "run once; exit 1 if an item was refused)")


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("glaneur", help="import the items of drop folders (local or SFTP) "
                       "as documents of the Pastell door")
    _arguments(p)
    p.set_defaults(func=lambda args: serve(args.config, args.every))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bus.glaneur", description=__doc__)
    _arguments(p)
    args = p.parse_args(argv)
    return serve(args.config, args.every)

"""``python -m bus.glaneur --config FILE [--every SECONDS]``: run every glaneur of the
file once, or again every SECONDS; one line per item imported or refused."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import httpx

from bus.glaneur.config import GlaneurError, GlaneurFile, load
from bus.glaneur.run import run_once


async def run_all(conf: GlaneurFile) -> int:
    """Every active glaneur once; the number of items refused."""
    refused = 0
    headers = {"Authorization": f"Bearer {conf.token}"}
    async with httpx.AsyncClient(base_url=conf.api, headers=headers, timeout=120) as api:
        for settings in conf.glaneurs:
            report = await run_once(settings, api)
            for name, id_d in report.imported.items():
                print(f"{settings.name}: {name} -> {id_d}")
            for name, reason in report.refused.items():
                print(f"{settings.name}: {name} refused: {reason}", file=sys.stderr)
            refused += len(report.refused)
    return refused


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bus.glaneur", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="glaneurs YAML file")
    parser.add_argument("--every", type=float, default=0, help="seconds between runs "
                        "(0: run once)")
    args = parser.parse_args(argv)
    try:
        conf = load(args.config)
    except GlaneurError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    while True:
        refused = asyncio.run(run_all(conf))
        if not args.every:
            return 1 if refused else 0
        asyncio.run(asyncio.sleep(args.every))


if __name__ == "__main__":
    sys.exit(main())

"""Running the glaneurs of a settings file: once, or again every N seconds (the command
``demat glaneur``, also ``python -m bus.glaneur``); one line per item imported or refused."""

from __future__ import annotations

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


async def _serve(conf: GlaneurFile, every: float) -> int:
    while True:
        refused = await run_all(conf)
        if not every:
            return 1 if refused else 0
        await asyncio.sleep(every)


def serve(config: Path, every: float = 0) -> int:
    """Exit status: 2 for bad settings, 1 when an item was refused (single run), else 0."""
    try:
        conf = load(config)
    except GlaneurError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(conf, every))
    except (OSError, GlaneurError, httpx.HTTPError) as exc:  # folder, server or door down
        print(f"error: {exc}", file=sys.stderr)
        return 1

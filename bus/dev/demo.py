"""Submit the demo documents and follow them to a terminal state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from bus.client import DematClient
from bus.plugins import Registry
from schemas.messages import DocumentState
from workers.common.demo import DemoDocument

Progress = Callable[[list[dict]], None]


def demo_documents(registry: Registry, count: int = 1) -> list[DemoDocument]:
    """``count`` rounds of the demo documents every flow family registered."""
    return [doc for i in range(count) for source in registry.demo_sources for doc in source(i)]


async def submit_demo(client: DematClient, count: int, workdir: Path) -> list[dict]:
    """Write and submit the demo documents, then the families' demo imports (received
    invoices...); return one row per document."""
    rows = []
    registry = client.runtime.registry
    for i, doc in enumerate(demo_documents(registry, count)):
        paths = doc.write(workdir / f"{i:04d}")
        receipt = await client.submit(doc.flow, paths, tenant=doc.tenant,
                                      metadata=doc.metadata, key=f"demo-{i}-{_stamp()}")
        rows.append(_row(doc, receipt.doc_id))
    for demo_import in registry.demo_imports:
        rows += await demo_import(client, count)
    return rows


async def follow(client: DematClient, rows: list[dict], timeout: float,
                 progress: Progress | None = None, interval: float = 0.3) -> list[dict]:
    """Refresh ``rows`` until every document is terminal or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        states = await asyncio.gather(*(client.status(r["id"]) for r in rows))
        for row, state in zip(rows, states, strict=True):
            _update(row, state)
        if progress:
            progress(rows)
        if all(r["terminal"] for r in rows) or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(interval)


def _stamp() -> str:
    return str(time.time_ns())


def _row(doc: DemoDocument, doc_id: str) -> dict:
    return {"id": doc_id, "flow": doc.flow, "tenant": doc.tenant, "label": doc.label,
            "state": "submitted", "step": None, "terminal": False, "error": None}


def _update(row: dict, state: DocumentState | None) -> None:
    if state is None:
        return
    row["state"] = state.state.value
    row["step"] = state.current_step
    row["terminal"] = state.state.terminal
    row["error"] = state.error.message if state.error else None

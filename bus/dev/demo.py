"""Submit the demo documents and follow them to a terminal state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from bus.client import DematClient
from schemas.messages import DocumentState
from workers.common.demo import DemoDocument, demo_documents

Progress = Callable[[list[dict]], None]


async def submit_demo(client: DematClient, count: int, workdir: Path) -> list[dict]:
    """Write and submit the demo documents; return one row per document."""
    rows = []
    for i, doc in enumerate(demo_documents(count)):
        paths = doc.write(workdir / f"{i:04d}")
        receipt = await client.submit(doc.flow, paths, tenant=doc.tenant,
                                      metadata=doc.metadata, key=f"demo-{i}-{_stamp()}")
        rows.append(_row(doc, receipt.doc_id))
    from workers.finance.demo import received_invoice_rows

    rows += await received_invoice_rows(client, count)  # invoice-in, through the import
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

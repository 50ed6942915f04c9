"""Operators' and archivists' pages: dead letters (listed by the API's own route, acted on
by the page's script through ``/v1/dead-letters``), flows drawn as graphs, the audit
(latest checkpoint, a verification run) and a document's journal chain."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from bus.api import audit, deadletters
from bus.api.auth import bus_of, permission, visible_state
from bus.audit.chain import event_hash
from bus.audit.events import document_events
from bus.audit.store import CHECKPOINTS, JournalStore
from bus.console.i18n import translator
from bus.console.svg import flow_graph
from bus.console.web import PREFIX, ConsoleRoute, Signed, render

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
LETTER_FILTERS = ("tenant", "flow", "step", "error")


@router.get("/dead-letters", openapi_extra=permission("read"))
async def dead_letter_list(request: Request, me: Signed, status: str = "open") -> Response:
    asked = {f: request.query_params.get(f, "").strip() or None for f in LETTER_FILTERS}
    listed = await deadletters.list_letters(request, me.who, since=None, status=status,
                                            limit=200, **asked)
    tenants = bus_of(request).client.runtime.tenants
    return render(request, "dead_letters.html", me, letters=listed["dead_letters"],
                  asked=asked, status=status, statuses=deadletters.STATUSES,
                  tenants=sorted(me.who.tenants_with("read", tenants)),
                  may_replay=bool(me.who.tenants_with("replay", tenants)),
                  may_discard=bool(me.who.tenants_with("discard", tenants)))


@router.get("/flows", openapi_extra=permission("authenticated"))
async def flow_list(request: Request, me: Signed) -> Response:
    flows = bus_of(request).client.runtime.flows
    return render(request, "flows.html", me, flows=[flows.get(n) for n in flows.names()])


@router.get("/flows/{name}", openapi_extra=permission("authenticated"))
async def flow_page(request: Request, me: Signed, name: str) -> Response:
    try:
        flow = bus_of(request).client.runtime.flows.get(name)
    except KeyError:
        raise HTTPException(404, {"message": "no such flow", "field": "name"}) from None
    return render(request, "flow.html", me, flow=flow, graph=flow_graph(flow, translator(me.lang)))


@router.get("/audit", openapi_extra=permission("audit"))
async def audit_page(request: Request, me: Signed, verify: bool = False) -> Response:
    """The latest checkpoint; with ``verify``, the API's verification of the person's
    tenants (its report, or that it still runs)."""
    runtime = bus_of(request).client.runtime
    if not me.who.tenants_with("audit", runtime.tenants):
        raise HTTPException(403, {"message": "your roles allow auditing no tenant",
                                  "field": "Authorization"})
    checkpoint = await asyncio.to_thread(_latest_checkpoint, runtime)
    report = None
    if verify:
        answer = await audit.verify(request, me.who)
        report = json.loads(bytes(answer.body))
    return render(request, "audit.html", me, checkpoint=checkpoint, report=report)


def _latest_checkpoint(runtime: Any) -> dict[str, Any] | None:
    """The newest checkpoint, with whether its signature and time-stamp are stored."""
    journal = JournalStore(runtime.settings, runtime.store)
    keys = journal.numbered(CHECKPOINTS, "json")
    if not keys:
        return None
    latest = keys[-1]
    body = json.loads(journal.get(latest) or b"{}")
    base = latest.removesuffix(".json")
    present = set(journal.keys(base))
    return {"key": latest, "body": body, "signed": f"{base}.sig" in present,
            "timestamped": f"{base}.tsr" in present}


@router.get("/documents/{doc_id}/chain", openapi_extra=permission("journal"))
async def chain_page(request: Request, me: Signed, doc_id: str) -> Response:
    """The document's events as sealed in the journal segments: each one's hash, whether
    it links to the one before, and whether a segment holds it yet."""
    state = await visible_state(request, me.who, doc_id, "journal")
    runtime = bus_of(request).client.runtime
    journal = JournalStore(runtime.settings, runtime.store)
    sealed = await asyncio.to_thread(document_events, journal, doc_id,
                                     state.created_at.timestamp())
    indexed = await asyncio.to_thread(bus_of(request).index.events, doc_id)
    by_seq = {e.seq: e for e in sealed}
    rows, prev = [], None
    for event in indexed:
        found = by_seq.get(event["seq"])
        data = found.model_dump(mode="json") if found else None
        rows.append({"seq": event["seq"], "type": event["type"], "at": event["at"],
                     "sealed": found is not None,
                     "hash": found.hash if found else None,
                     "intact": bool(data and data.get("hash") == event_hash(data)),
                     "linked": bool(found and found.prev_hash == prev)})
        prev = found.hash if found else None
    return render(request, "chain.html", me, doc_id=doc_id, rows=rows)

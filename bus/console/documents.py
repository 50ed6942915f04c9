"""The documents' pages: the list (filters and business-key search, through the API's own
search) and one document (steps, timeline, files, journal and actions)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from bus.api.auth import bus_of, permission, visible_state
from bus.api.documents import files_of, find_documents
from bus.console.timeline import timeline
from bus.console.web import PREFIX, STATE_NAMES, ConsoleRoute, Signed, render
from bus.search import declared_keys

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
PAGE_SIZE = 50
FILTERS = ("tenant", "flow", "state", "since", "until", "key", "value", "before")


def _before(value: str, until: str | None) -> str | None:
    """The exclusive upper bound of the submission time: the page's ``before`` (the
    oldest document of the page before, an ISO date-time) or the day after ``until``."""
    if value:
        try:
            return datetime.fromisoformat(value).isoformat()
        except ValueError:
            raise HTTPException(422, {"message": f"{value!r}: expected an ISO date-time",
                                      "field": "before"}) from None
    return (date.fromisoformat(until) + timedelta(days=1)).isoformat() if until else None


def _day(value: str, field: str) -> str | None:
    """An ISO day of a filter (``None`` when empty), else 422 naming the field."""
    if not value:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise HTTPException(422, {"message": f"{value!r}: expected a date YYYY-MM-DD",
                                  "field": field}) from None


@router.get("/documents", openapi_extra=permission("read"))
async def document_list(request: Request, me: Signed) -> Response:
    """Newest first, at most ``PAGE_SIZE``, within the person's tenants."""
    runtime = bus_of(request).client.runtime
    asked = {f: request.query_params.get(f, "").strip() for f in FILTERS}
    until = _before(asked["before"], _day(asked["until"], "until"))
    pairs = [(asked["key"], asked["value"])] if asked["key"] and asked["value"] else []
    rows = await find_documents(
        bus_of(request), me.who, tenant=asked["tenant"] or None, flow=asked["flow"] or None,
        state=asked["state"] or None, since=_day(asked["since"], "since"), until=until,
        pairs=pairs, limit=PAGE_SIZE)
    older = None
    if len(rows) == PAGE_SIZE:  # the next page: documents submitted before this one's last
        older = str(request.url.include_query_params(before=rows[-1]["created_at"]))
    tenants = runtime.tenants
    reach = me.who.tenants_with("read", tenants) | me.who.tenants_with("read-own", tenants)
    return render(request, "documents.html", me, documents=rows, asked=asked,
                  tenants=sorted(reach), flows=runtime.flows.names(), states=STATE_NAMES,
                  keys=declared_keys(runtime.flows), page_size=PAGE_SIZE, older=older)


@router.get("/documents/{doc_id}", openapi_extra=permission("read"))
async def document_page(request: Request, me: Signed, doc_id: str) -> Response:
    """What happened to one document the person may see (else 404, as the API)."""
    bus = bus_of(request)
    state = await visible_state(request, me.who, doc_id)
    env = state.envelope
    assert env is not None
    tenants = bus.client.runtime.tenants
    may = {p: me.who.may(p, env.tenant, tenants)
           for p in ("journal", "export", "proofs", "cancel", "submit")}
    events = await asyncio.to_thread(bus.index.events, doc_id) if may["journal"] else []
    files = [_file(doc_id, ref, extra) for ref, extra in files_of(state)]
    shown = {k: v for k, v in env.metadata.items()
             if isinstance(v, str | int | float | bool) and len(str(v)) <= 300}
    return render(request, "document.html", me, state=state, env=env, files=files,
                  metadata=shown,
                  steps=timeline(state, events), events=events, allowed=may,
                  is_acte=env.flow == "acte")


def _file(doc_id: str, ref: Any, extra: dict[str, Any]) -> dict[str, Any]:
    return {"name": ref.name, "size": ref.size, "media_type": ref.media_type,
            "sha256": ref.sha256, **extra,
            "href": f"/v1/documents/{doc_id}/files/{ref.sha256}"}

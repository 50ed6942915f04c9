"""``/api/v2/entite/{id_e}/events``, an extra of the bus (the incumbent has no push):
the entity's document actions as Server-Sent Events, Pastell-shaped. Each frame is
``event: document_action`` with ``data`` ``{id_d, id_e, flux, action, message, date}``
when a document's ``last_action`` changes; ``id`` is the stream cursor
(``Last-Event-ID`` resumes). The native ``/v1/events`` stream underneath."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from bus.api.pastell.documents import Who, door_of
from bus.api.pastell.http import PastellError, PastellRoute
from bus.api.pastell.model import Door
from bus.pastell.states import event_action
from bus.webhooks.stream import parse_cursor, tenant_stream

router = APIRouter(prefix="/api/v2", route_class=PastellRoute, include_in_schema=False)


@router.get("/entite/{id_e}/events")
async def events(request: Request, who: Who, id_e: str) -> Response:
    door = door_of(request, who)
    siren = await door.entity(id_e)
    if not door.may("read", siren):
        raise door.forbidden(id_e, "journal:lecture")
    since = request.headers.get("last-event-id") or None
    if since:
        try:
            parse_cursor(since)
        except ValueError as exc:
            raise PastellError(400, str(exc)) from None
    frames = tenant_stream(door.bus.client.runtime.settings, siren, ["*"], since=since)
    return StreamingResponse(pastell_frames(door, frames), media_type="text/event-stream",
                             headers={"X-Accel-Buffering": "no"})


async def pastell_frames(door: Door, frames: AsyncIterator[str]) -> AsyncIterator[str]:
    """The native frames as Pastell actions: one frame per change of a document's state."""
    seen: dict[str, str] = {}
    async for frame in frames:
        fields = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line
                      and not line.startswith(":"))
        if "data" not in fields:
            yield frame  # the heartbeat
            continue
        action = await _action(door, json.loads(fields["data"]))
        if action is not None and seen.get(action["id_d"]) != action["action"]:
            seen[action["id_d"]] = action["action"]
            yield (f"id: {fields.get('id', '')}\nevent: document_action\n"
                   f"data: {json.dumps(action)}\n\n")


async def _action(door: Door, native: dict[str, Any]) -> dict[str, Any] | None:
    """The Pastell action a native event stands for, if its document is a Pastell
    document the caller sees."""
    record = await door.run(door.store.of_bus_document, native.get("document") or "")
    if record is None or not door.sees(record):
        return None
    return event_action(record, native)

"""``/api/v2/journal``: the journal of an entity's Pastell documents (the door's actions
on drafts, then the bus's journal events, type 1), one entry (``/journal/{id_j}``), and
its RFC 3161 proof (``/journal/{id_j}/jeton``): the time-stamp reply over the bus's
signed journal checkpoint that seals the entry (the bus chains its journal and stamps
checkpoints, not each entry; the entry's inclusion proof is in
``/v1/documents/{id}/proof``)."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bus.api.pastell.documents import Who, door_of
from bus.api.pastell.http import PastellError, PastellRoute, pastell_json, read_params
from bus.api.pastell.model import Door
from bus.audit.bundle import export_bundle
from bus.pastell.store import Record

router = APIRouter(prefix="/api/v2", route_class=PastellRoute, include_in_schema=False)
JOURNAL_LIMIT = 100


def _may_read_journal(door: Door, siren: str, id_e: str) -> None:
    if not (door.may("journal", siren) or door.reads(siren)):
        raise door.forbidden(id_e, "journal:lecture")


@router.get("/journal")
async def journal(request: Request, who: Who) -> Response:
    """Rows of the entity's documents (``id_e``, ``id_d``, ``offset``, ``limit``), newest
    first."""
    door = door_of(request, who)
    params = await read_params(request)
    id_e = params.get("id_e")
    if not id_e:
        raise PastellError(400, "Le paramètre id_e est obligatoire")
    siren = await door.entity(id_e, "journal:lecture")
    _may_read_journal(door, siren, id_e)
    if id_d := params.get("id_d"):
        records = [(await door.document(id_e, id_d))[0]]
    else:
        records = [r for r in await door.run(door.store.list, siren, None, 0, 1000)
                   if door.sees(r)]
    rows = [row for r in records for row, _ in await journal_rows(door, r)]
    rows.sort(key=lambda r: r["date"], reverse=True)
    offset = int(params.get("offset") or 0)
    return pastell_json(rows[offset:offset + int(params.get("limit") or JOURNAL_LIMIT)])


async def journal_rows(door: Door, record: Record) -> list[tuple[dict[str, Any], str | None]]:
    """The document's rows, each with the bus document its event belongs to (``None``
    for the door's own actions). ``id_j`` is ``<id_d>.<n>`` for the door's actions,
    ``<id_d>.<event id>`` for the bus's events."""
    info, id_e, siren = record["info"], str(record["id_e"]), record["tenant"]
    base = {"type": "1", "id_e": id_e, "id_d": info["id_d"], "document_type": info["type"],
            "titre": info["titre"], "siren": siren,
            "denomination": door.tenants.get(siren).name, "date_horodatage": "",
            "message_horodate": ""}
    rows: list[tuple[dict[str, Any], str | None]] = [
        (base | {"id_j": f"{info['id_d']}.{i}", "id_u": record["producer"],
                 "action": a["action"], "message": a["message"], "date": a["date"]}, None)
        for i, a in enumerate(record["actions"])]
    for doc_id in filter(None, (record.get("doc_id"), record.get("cancel_id"))):
        for event in await door.run(door.bus.index.events, doc_id):
            rows.append((base | {
                "id_j": f"{info['id_d']}.{event['event_id']}", "id_u": event["actor"] or "",
                "action": event["type"], "message": _message(event),
                "date": event["at"].replace("T", " ")[:19]}, doc_id))
    return rows


def _message(event: dict[str, Any]) -> str:
    step = f"étape {event['step']} : " if event.get("step") else ""
    return f"{step}{event['state'] or ''}".strip()


async def _entry(door: Door, id_j: str) -> tuple[dict[str, Any], str | None]:
    id_d, _, _ = id_j.partition(".")
    record = await door.run(door.store.get, id_d) if len(id_j) <= 200 else None
    missing = PastellError(404, f"L'entrée {id_j} n'existe pas dans le journal")
    if record is None or not door.sees(record):
        raise missing
    _may_read_journal(door, record["tenant"], str(record["id_e"]))
    found = [(row, doc) for row, doc in await journal_rows(door, record) if row["id_j"] == id_j]
    if not found:
        raise missing
    return found[0]


@router.get("/journal/{id_j}")
async def entry(request: Request, who: Who, id_j: str) -> Response:
    row, _ = await _entry(door_of(request, who), id_j)
    return pastell_json(row)


@router.get("/journal/{id_j}/jeton")
async def jeton(request: Request, who: Who, id_j: str) -> Response:
    """The RFC 3161 time-stamp reply (``.tsr``) of the checkpoint sealing the entry."""
    door = door_of(request, who)
    _, doc_id = await _entry(door, id_j)
    if doc_id is None:
        raise PastellError(404, f"L'entrée {id_j} est une action de la passerelle Pastell : "
                                "elle n'est pas scellée dans le journal du bus")
    event_id = id_j.partition(".")[2]
    tsr = await asyncio.to_thread(_sealed_stamp, door.bus.client.runtime, doc_id, event_id)
    if tsr is None:
        raise PastellError(404, f"L'entrée {id_j} n'est pas encore scellée : réessayez "
                                "dans quelques instants")
    return Response(tsr, media_type="application/timestamp-reply", headers={
        "Content-Disposition": f'attachment; filename="{id_j}.tsr"'})


def _sealed_stamp(runtime: Any, doc_id: str, event_id: str) -> bytes | None:
    """The checkpoint's time-stamp reply if ``event_id`` is sealed in it, else ``None``."""
    folder = Path(tempfile.mkdtemp(prefix="demat-jeton-"))
    try:
        export_bundle(runtime, doc_id, folder / "bundle")
        sealed = {json.loads(line)["event_id"] for line in
                  (folder / "bundle" / "events.jsonl").read_text().splitlines() if line}
        return (folder / "bundle" / "checkpoint.tsr").read_bytes() \
            if event_id in sealed else None
    except (KeyError, ValueError):  # nothing sealed yet
        return None
    finally:
        shutil.rmtree(folder, ignore_errors=True)

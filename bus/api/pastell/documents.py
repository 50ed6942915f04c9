"""``/api/v2/entite/{id_e}/document``: create, PATCH, detail, several, list, count,
actions and deletion of Pastell documents (files and externalData: ``files.py``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from bus.api.pastell.actions import check_action_name, note, run_action
from bus.api.pastell.http import (
    Params,
    PastellError,
    PastellRoute,
    pastell_caller,
    pastell_json,
    read_params,
)
from bus.api.pastell.model import Door, detail, last_action, missing_field
from bus.identity import Identity
from bus.pastell.flux import FLUX
from bus.pastell.store import Record, new_id_d, now_text

router = APIRouter(prefix="/api/v2", route_class=PastellRoute, include_in_schema=False)
Who = Annotated[Identity, Depends(pastell_caller)]
LIST_LIMIT = 100


def door_of(request: Request, who: Identity) -> Door:
    return Door.of(request, who)


@router.post("/entite/{id_e}/document")
async def create(request: Request, who: Who, id_e: str) -> Response:
    """A new draft of flux ``type`` (body or query string): its detail and ``id_d``;
    with an ``Idempotency-Key``, the same key answers the document it first made."""
    door = door_of(request, who)
    params = await read_params(request)
    siren = await door.entity(id_e)
    flux = door.flux(params.get("type"), id_e, siren)
    id_d = new_id_d()
    if key := request.headers.get("idempotency-key", "").strip()[:200]:
        first = await door.run(door.store.claim_key, who.producer, key, id_d)
        if first != id_d and (record := await door.run(door.store.get, first)):
            first_flux = FLUX[record["info"]["type"]]
            return pastell_json(await detail(door, record, first_flux) | {"id_d": first},
                                201)
    created = now_text()
    record: Record = {
        "info": {"id_d": id_d, "type": flux.name, "titre": "", "creation": created,
                 "modification": created},
        "tenant": siren, "id_e": id_e, "producer": who.producer, "data": {}, "files": {},
        "actions": [], "doc_id": None}
    note(record, "creation", "Création du document")
    if source := request.headers.get("x-glaneur-import", "")[:2000]:
        gleaned = source.encode("latin-1").decode("utf-8", errors="replace")
        note(record, "importation", f"[glaneur] Import du document {gleaned}")
    await door.run(door.store.put, record)
    return pastell_json(await detail(door, record, flux) | {"id_d": id_d}, 201)


@router.patch("/entite/{id_e}/document/{id_d}")
async def patch(request: Request, who: Who, id_e: str, id_d: str) -> Response:
    """Set fields (urlencoded ``field=value``) of a draft."""
    door = door_of(request, who)
    record, flux = await door.document(id_e, id_d, "edition")
    params = await read_params(request)
    await set_fields(door, record, flux, params)
    return pastell_json(await form_answer(door, record, flux))


async def set_fields(door: Door, record: Record, flux: Any, params: Params) -> None:
    """Keep the parameters as fields of the draft (400 once it was submitted)."""
    if record.get("doc_id") is not None:
        raise PastellError(400, "L'action « modification »  n'est pas permise")
    for name, value in params.fields():
        if name not in ("type", "id_e", "id_d", "api_function"):
            record["data"][name] = value
    for name in {k.split("[")[0] for k, _ in params.items if "[" in k}:
        record["data"][name] = json.dumps(params.array(name), separators=(",", ":"))
    record["info"]["titre"] = str(record["data"].get(flux.title, ""))
    note(record, "modification", "Modification du document")
    await door.run(door.store.put, record)


async def form_answer(door: Door, record: Record, flux: Any) -> dict[str, Any]:
    """What PATCH and file uploads answer: the detail, and whether the form is valid."""
    why = missing_field(flux, record)
    return {"content": await detail(door, record, flux), "result": "ok",
            "formulaire_ok": 0 if why else 1, "message": why}


@router.get("/entite/{id_e}/document/{id_d}")
async def read(request: Request, who: Who, id_e: str, id_d: str) -> Response:
    door = door_of(request, who)
    record, flux = await door.document(id_e, id_d)
    return pastell_json(await detail(door, record, flux))


@router.get("/entite/{id_e}/document/{id_d}/action")
async def read_by_action(request: Request, who: Who, id_e: str, id_d: str) -> Response:
    """MegActe reads the state here: it falls through to the detail, as on the incumbent."""
    return await read(request, who, id_e, id_d)


@router.post("/entite/{id_e}/document/{id_d}/action/{action}")
async def action(request: Request, who: Who, id_e: str, id_d: str, action: str) -> Response:
    door = door_of(request, who)
    check_action_name(action)
    record, flux = await door.document(id_e, id_d, "edition")
    return pastell_json(await run_action(door, record, flux, action), 201)


@router.delete("/entite/{id_e}/document/{id_d}")
async def delete(request: Request, who: Who, id_e: str, id_d: str) -> Response:
    """Runs ``supression``; 204 with an empty body (as 5.x)."""
    door = door_of(request, who)
    record, flux = await door.document(id_e, id_d, "edition")
    await run_action(door, record, flux, "supression")
    return Response(status_code=204)


@router.get("/entite/{id_e}/document")
async def listing(request: Request, who: Who, id_e: str) -> Response:
    """Rows of the entity's documents (``type``, ``offset``, ``limit``, ``lastetat``,
    ``search``), or with ``id_d[]`` a map of their details."""
    door = door_of(request, who)
    params = await read_params(request)
    siren = await door.entity(id_e)
    if wanted := params.array("id_d"):
        found = {}
        for id_d in wanted:
            record, flux = await door.document(id_e, id_d)
            found[id_d] = await detail(door, record, flux)
        return pastell_json(found)
    if not door.reads(siren):
        raise door.forbidden(id_e, f"{params.get('type') or 'document'}:lecture")
    kind = params.get("type") or None
    if kind is not None:
        door.flux(kind, id_e, siren, "lecture")
    offset, limit = _int(params, "offset", 0), _int(params, "limit", LIST_LIMIT)
    records = await door.run(door.store.list, siren, kind, offset, limit)
    rows = [await _row(door, r, siren) for r in records if door.sees(r)]
    if state := params.get("lastetat"):
        rows = [r for r in rows if r["last_action"] == state]
    if text := params.get("search").lower():
        rows = [r for r in rows if text in r["titre"].lower()]
    return pastell_json(rows)


def _int(params: Params, name: str, default: int) -> int:
    raw = params.get(name)
    if raw and not raw.isdigit():
        raise PastellError(400, f"Le paramètre {name} doit être un entier")
    return int(raw) if raw else default


async def _row(door: Door, record: Record, siren: str) -> dict[str, Any]:
    flux = FLUX[record["info"]["type"]]
    last = last_action(flux, record, await door.native(record),
                       await door.cancel_state(record))
    info = record["info"]
    return {**{k: info[k] for k in ("id_d", "type", "titre", "creation", "modification")},
            "id_e": str(record["id_e"]), "role": "editeur", "last_action": last["action"],
            "last_action_date": last["date"], "last_type": info["type"],
            **await entity_row(door, siren)}


async def entity_row(door: Door, siren: str) -> dict[str, Any]:
    """The entity columns the incumbent joins to rows: name, SIREN, parent ..."""
    tenant = door.tenants.get(siren)
    parent = await door.id_e(tenant.parent) if tenant.parent in door.tenants else "0"
    return {"denomination": tenant.name, "siren": siren, "entite_mere": parent,
            "centre_de_gestion": "0", "is_active": True, "entite_base": tenant.name}


@router.get("/document/count")
async def count(request: Request, who: Who) -> Response:
    """Documents per entity, flux and state (``output=simple``: of one entity)."""
    door = door_of(request, who)
    params = await read_params(request)
    numbers = await door.numbers()
    wanted = params.get("id_e")
    sirens = [await door.entity(wanted)] if wanted else sorted(door.who.reaches(door.tenants))
    counts: dict[str, Any] = {}
    for siren in sirens:
        by_flux: dict[str, dict[str, int]] = {}
        for record in await door.run(door.store.list, siren, params.get("type") or None,
                                     0, 10_000):
            if door.sees(record):
                row = await _row(door, record, siren)
                states = by_flux.setdefault(row["type"], {})
                states[row["last_action"]] = states.get(row["last_action"], 0) + 1
        counts[str(numbers[siren])] = {"flux": by_flux, **await entity_row(door, siren)}
    if params.get("output") == "simple" and wanted:
        return pastell_json(counts[str(numbers[sirens[0]])]["flux"])
    return pastell_json(counts)

"""Files of Pastell documents (upload as multipart or as a plain ``file_content`` value,
chunked upload, download, deletion) and the ``externalData`` choice lists."""

from __future__ import annotations

import base64
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from bus.api.documents import spool
from bus.api.pastell.documents import Who, door_of, form_answer, set_fields
from bus.api.pastell.historique import HISTORY, historique
from bus.api.pastell.http import Params, PastellError, PastellRoute, pastell_json, read_params
from bus.api.pastell.model import Door, detail, outputs
from bus.client import BytesInput, Input
from bus.pastell.flux import Flux
from bus.pastell.store import Record
from schemas.envelope import FileRef

router = APIRouter(prefix="/api/v2/entite/{id_e}/document/{id_d}", route_class=PastellRoute,
                   include_in_schema=False)
CHUNKS = "pastell/chunks/"  # object-store prefix of chunks waiting for the last one
MAX_CHUNKS = 10_000


def _file_fields(flux: Flux, field: str) -> None:
    if field not in (flux.main, flux.annexes):
        raise PastellError(400, f"Le champ {field} n'est pas un champ fichier du flux "
                                f"{flux.name}")


async def _draft(request: Request, who: Any, id_e: str, id_d: str, field: str
                 ) -> tuple[Door, Record, Flux]:
    door = door_of(request, who)
    record, flux = await door.document(id_e, id_d, "edition")
    if record.get("doc_id") is not None:
        raise PastellError(400, "L'action « modification »  n'est pas permise")
    _file_fields(flux, field)
    return door, record, flux


async def _keep(door: Door, record: Record, flux: Flux, field: str, num: int, upload: Input
                ) -> None:
    """Store the file in the object store and name it in the draft's field."""
    client = door.bus.client
    encrypt = any(client.runtime.flows.get(f).encrypt_files for f in flux.flows)
    ref = await client._in_thread(client._upload, num, record["tenant"], upload, encrypt)
    refs = record["files"].setdefault(field, [])
    kept = ref.model_dump(mode="json")
    if num < len(refs):
        refs[num] = kept
    else:
        refs.append(kept)
    await door.run(door.store.put, record)


def _input(params: Params, folder: Path) -> Input:
    """The uploaded file: multipart ``file_content`` (or ``file``), or the value itself."""
    name = params.get("file_name")
    upload = params.upload("file_content") or params.upload("file")
    if upload is not None:
        upload.filename = name or upload.filename
        return spool([upload], folder)[0]
    if "file_content" in params.raw:
        return BytesInput(params.raw["file_content"], name or "fichier")
    if content := params.get("file_content"):
        return BytesInput(content.encode(), name or "fichier")
    raise PastellError(400, "Le paramètre file_content est obligatoire")


@router.post("/file/{field}")
@router.post("/file/{field}/{num}")
async def post_file(request: Request, who: Who, id_e: str, id_d: str, field: str,
                    num: int = 0) -> Response:
    door, record, flux = await _draft(request, who, id_e, id_d, field)
    params = await read_params(request)
    folder = Path(tempfile.gettempdir()) / f"demat-pastell-{uuid.uuid4().hex}"
    try:
        await _keep(door, record, flux, field, num, await door.run(_input, params, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return pastell_json(await form_answer(door, record, flux), 201)


@router.post("/chunk/{field}")
@router.post("/chunk/{field}/{num}")
async def post_chunk(request: Request, who: Who, id_e: str, id_d: str, field: str,
                     num: int = 0) -> Response:
    """One chunk (``chunk_number`` of ``total_chunks``, multipart ``file``): 200 until the
    last one, then the file is stored and the answer is the upload's, with 201. Chunks
    wait in the object store (any API node takes the next one)."""
    door, record, flux = await _draft(request, who, id_e, id_d, field)
    params = await read_params(request)
    upload = params.upload("file")
    total, number = params.get("total_chunks"), params.get("chunk_number")
    if upload is None or not total.isdigit() or not number.isdigit() or \
            not 0 < int(total) <= MAX_CHUNKS:
        raise PastellError(400, "Les paramètres file, chunk_number et total_chunks (au plus "
                                f"{MAX_CHUNKS}) sont obligatoires")
    store = door.bus.client.runtime.store
    prefix = f"{CHUNKS}{id_d}/{field}/{num}/"
    await door.run(store.put_record, f"{prefix}{int(number):08d}", await upload.read(),
                   content_type="application/octet-stream")
    keys = await door.run(store.list_keys, prefix)
    if len(keys) < int(total):
        return pastell_json({"result": "ok", "message": "Chunk uploaded"}, 200)
    try:
        whole = b"".join([await door.run(store.get_record, k) or b"" for k in keys])
        await _keep(door, record, flux, field, num,
                    BytesInput(whole, params.get("file_name") or "fichier"))
    finally:
        for key in keys:
            await door.run(store.delete_record, key)
    return pastell_json(await form_answer(door, record, flux) | {"message": "File uploaded"},
                        201)


def _refs(record: Record, flux: Flux, state: Any, field: str) -> list[dict[str, Any]]:
    """A field's files; the main field serves the signed document once there is one."""
    made = outputs(flux, state)
    if field == flux.main and made.get("document_signe"):
        return made["document_signe"]
    return record["files"].get(field) or made.get(field) or []


@router.get("/file/{field}")
@router.get("/file/{field}/{num}")
async def get_file(request: Request, who: Who, id_e: str, id_d: str, field: str,
                   num: int = 0) -> Response:
    """The raw bytes (``Content-Disposition``); ``receive=true``: JSON name and content."""
    door = door_of(request, who)
    record, flux = await door.document(id_e, id_d)
    state = await door.native(record)
    if field == HISTORY and (log := historique(state)) is not None:
        return Response(log, media_type="application/xml", headers={
            "Content-Disposition": f'attachment; filename="{HISTORY}.xml"'})
    refs = _refs(record, flux, state, field)
    if num >= len(refs):
        raise PastellError(404, "Ce fichier n'existe pas")
    ref = FileRef.model_validate(refs[num])
    store = door.bus.client.runtime.store
    if request.query_params.get("receive") == "true":
        content = await door.run(store.read_file, record["tenant"], ref)
        return pastell_json({"file_name": ref.name,
                             "file_content": base64.b64encode(content).decode()})
    ascii_name = "".join(c if c.isascii() and c not in '"\\' else "_" for c in ref.name)
    return StreamingResponse(store.iter_file(record["tenant"], ref), media_type=ref.media_type,
                             headers={"Content-Disposition":
                                      f'attachment; filename="{ascii_name}"'})


@router.delete("/file/{field}")
@router.delete("/file/{field}/{num}")
async def delete_file(request: Request, who: Who, id_e: str, id_d: str, field: str,
                      num: int = 0) -> Response:
    door, record, flux = await _draft(request, who, id_e, id_d, field)
    refs = record["files"].get(field, [])
    if num < len(refs):
        del refs[num]
        await door.run(door.store.put, record)
    return pastell_json(await detail(door, record, flux))


@router.get("/externalData/{field}")
async def external_data(request: Request, who: Who, id_e: str, id_d: str, field: str
                        ) -> Response:
    door = door_of(request, who)
    record, flux = await door.document(id_e, id_d, "edition")
    if field not in flux.external:
        raise PastellError(400, f"Type {field} introuvable")
    return pastell_json(await choices(door, record, flux, field))


async def choices(door: Door, record: Record, flux: Flux, field: str) -> Any:
    """The choice list of ``field``: from the tenant's classification (actes) or its
    i-Parapheur connector (sub-types)."""
    tenant = door.tenants.get(record["tenant"])
    if field == "iparapheur_sous_type":
        connector = tenant.connectors.get("signature")
        options = connector.options if connector is not None else {}
        return [str(s) for s in options.get("subtypes") or [options.get("subtype")] if s]
    found = await door.provided("actes.classification")(door.bus.client.runtime, tenant)
    if found is None:
        raise PastellError(400, "La classification n'est pas disponible")
    if field == "classification":
        return found.subjects
    nature = record["data"].get("acte_nature", "")
    typologies = found.typologies(int(nature)) if nature.isdigit() else {}
    pieces = [r["name"] for f in (flux.main, flux.annexes) for r in record["files"].get(f, [])]
    return {"actes_type_pj_list": {c: f"{label} ({c})" for c, label in typologies.items()},
            "pieces": pieces}


@router.patch("/externalData/{field}")
async def patch_external_data(request: Request, who: Who, id_e: str, id_d: str, field: str
                              ) -> Response:
    """Choose a value; ``type_piece`` takes ``type_pj[i]``, one typology per file (the
    acte's, then each annex's)."""
    door = door_of(request, who)
    record, flux = await door.document(id_e, id_d, "edition")
    if field not in flux.external:
        raise PastellError(400, f"Type {field} introuvable")
    params = await read_params(request)
    if field == "type_piece":
        typologies = params.array("type_pj")
        listed = (await choices(door, record, flux, field))["actes_type_pj_list"]
        if not typologies or any(t not in listed for t in typologies):
            raise PastellError(400, f"Typologie inconnue dans {typologies}")
        params = Params([("type_acte", typologies[0]),
                         ("type_piece", f"{len(typologies)} fichier(s) typé(s)")]
                        + [(f"type_pj[{i}]", t) for i, t in enumerate(typologies[1:])])
    await set_fields(door, record, flux, params)
    if field == "type_piece" and "type_pj" not in record["data"]:
        record["data"]["type_pj"] = "[]"
        await door.run(door.store.put, record)
    return pastell_json(await detail(door, record, flux) | {"result": "ok"})

"""``/v1/documents``: submit, state, journal, search, files and export of documents."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
import zipfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    Header,
    HTTPException,
    Query,
    Request,
    UploadFile,
)
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

from bus import intake
from bus.api.auth import bus_of, caller, forbidden, may_see, permission, sees, visible_state
from bus.audit.config import key_hasher
from bus.client import BytesInput, DematClient, FileInput, Input, Receipt
from bus.export import export_document
from bus.identity import Identity
from bus.intake import SubmissionError, loads_metadata
from bus.search import query_keys
from schemas.envelope import Envelope, FileRef, FileRole
from schemas.messages import DocumentState

router = APIRouter(prefix="/v1/documents", tags=["documents"])
MAX_METADATA = 256 * 1024  # bytes of the metadata JSON
MAX_FILES = 100
COPY_CHUNK = 1024 * 1024
IN_MEMORY = 1024 * 1024  # python-multipart keeps a file part up to this size in memory
Who = Annotated[Identity, Depends(caller)]
FILTERS = ("tenant", "flow", "state", "since", "until", "limit", "key")


def _metadata(raw: str) -> dict[str, Any]:
    if len(raw.encode()) > MAX_METADATA:
        raise SubmissionError("metadata", f"over {MAX_METADATA} bytes")
    return loads_metadata(raw)


def spool(files: list[UploadFile], folder: Path) -> list[Input]:
    """The uploads as the SDK takes them: a small one (the server holds it in memory)
    as bytes, a larger one (spooled to disk by the server) copied to a file in
    ``folder`` (made if needed) that the SDK streams to the object store; the first file
    is the main one, the others annexes."""
    inputs: list[Input] = []
    for i, upload in enumerate(files):
        name = upload.filename if upload.filename is not None else f"file-{i}"
        intake.check_file_name_of(i, name)  # before anything is copied or stored
        role = FileRole.MAIN if i == 0 else FileRole.ANNEX
        if upload.size is not None and upload.size <= IN_MEMORY:
            inputs.append(BytesInput(upload.file.read(), name, role))
            continue
        folder.mkdir(exist_ok=True)
        path = folder / f"{i}"
        with path.open("wb") as out:
            shutil.copyfileobj(upload.file, out, COPY_CHUNK)
        inputs.append(FileInput(path, role=role, name=name))
    return inputs


def _prepare(client: DematClient, files: list[UploadFile], flow: str, tenant: str,
             meta: dict[str, Any], key: str | None) -> Envelope:
    """Check and store the uploads (SDK ``prepare``) in one trip to a thread: the loop
    never waits on the file system or the store."""
    folder = Path(tempfile.gettempdir()) / f"demat-api-{uuid.uuid4().hex}"
    try:
        return client.prepare(flow, spool(files, folder), tenant=tenant, metadata=meta,
                              key=key)
    finally:
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)


@router.post("", status_code=202, summary="submit a document", openapi_extra=permission("submit"))
async def submit(request: Request, who: Who, flow: Annotated[str, Form()],
                 tenant: Annotated[str, Form()], files: Annotated[list[UploadFile], File()],
                 metadata: Annotated[str, Form()] = "{}",
                 idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key",
                                                               max_length=200)] = None
                 ) -> JSONResponse:
    """Upload the files and submit; the same ``Idempotency-Key`` with the same content
    answers the first document's id (``duplicate: true``), with other content 422."""
    bus = bus_of(request)
    if not who.may("submit", tenant, bus.client.runtime.tenants):
        raise forbidden("submitting", tenant)
    meta = _metadata(metadata)
    if len(files) > MAX_FILES:
        raise SubmissionError("files", f"at most {MAX_FILES} files")
    env = await bus.client._in_thread(_prepare, bus.client, files, flow, tenant, meta,
                                      idempotency_key)
    return accepted(await publish_as(bus, who, env))


async def submit_as(bus: Any, who: Identity, flow: str, inputs: list[Input], *,
                    tenant: str, metadata: dict[str, Any], key: str | None = None,
                    correlation_id: str | None = None, flow_checks: bool = False) -> Receipt:
    """Check, upload and submit a document with ``who`` as its producer (the journal's
    ``submitted`` event names it); ``SubmissionError`` if refused. ``flow_checks``: run
    the flow family's checks now too (intake runs them anyway), so their refusal is the
    request's answer."""
    env = await bus.client._in_thread(bus.client.prepare, flow, inputs, tenant=tenant,
                                      metadata=metadata, key=key, correlation_id=correlation_id)
    if flow_checks:
        await intake.check_flow(bus.client.runtime, env)
    return await publish_as(bus, who, env)


async def publish_as(bus: Any, who: Identity, env: Envelope) -> Receipt:
    """Publish an envelope whose files are stored, as ``who``: claim its idempotency key
    (the first document's receipt if another holds it), keep the receipt
    (``GET /v1/documents/{id}`` answers ``submitted`` from it until the router has the
    document), then send the message; a message not sent leaves neither key nor
    receipt (``DematClient.submit_envelope``)."""
    return await bus.client.submit_envelope(who.stamp(env))


def accepted(receipt: Receipt, **extra: Any) -> JSONResponse:
    """``202`` with the document's id and ``Location``."""
    location = f"/v1/documents/{receipt.doc_id}"
    return JSONResponse({"id": receipt.doc_id, "duplicate": receipt.duplicate,
                         "state": "submitted", "location": location} | extra,
                        status_code=202, headers={"Location": location})


def _view(state: DocumentState) -> dict[str, Any]:
    env = state.envelope
    assert env is not None
    return {"id": state.doc_id, "tenant": env.tenant, "flow": env.flow,
            "state": state.state.value, "step": state.current_step,
            "error": state.error.model_dump(mode="json") if state.error else None,
            "duplicate_of": state.duplicate_of, "metadata": env.metadata,
            "steps": [{"name": r.name, "status": r.status, "attempts": r.attempts,
                       "finished_at": r.finished_at.isoformat() if r.finished_at else None}
                      for r in state.steps],
            "created_at": state.created_at.isoformat(),
            "updated_at": state.updated_at.isoformat()}


@router.get("", summary="search documents", openapi_extra=permission("read"))
async def search(request: Request, who: Who, tenant: str | None = None,
                 flow: str | None = None, state: str | None = None,
                 since: str | None = None, until: str | None = None,
                 key: Annotated[list[str], Query()] = [],  # noqa: B006 (FastAPI's way)
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """Documents of the caller's tenants by tenant, flow, state, submission dates and
    business keys (``key=NAME=VALUE``, or ``NAME=VALUE`` for any key a flow declares)."""
    found = await find_documents(bus_of(request), who, tenant=tenant, flow=flow, state=state,
                                 since=since, until=until, pairs=_key_pairs(request, key),
                                 limit=limit)
    return {"documents": found}


async def find_documents(bus: Any, who: Identity, *, tenant: str | None, flow: str | None,
                         state: str | None, since: str | None, until: str | None,
                         pairs: list[tuple[str, str]], limit: int) -> list[dict[str, Any]]:
    """The documents ``who`` may see matching the filters, newest first (the API's search
    and the console's list): 403 for a tenant out of reach, 422 for an unknown key."""
    runtime = bus.client.runtime
    tenants = runtime.tenants
    scope = who.tenants_with("read", tenants) | who.tenants_with("read-own", tenants)
    if tenant is not None:
        if tenant not in scope:
            raise forbidden("reading", tenant)
        scope = {tenant}
    try:
        keys = query_keys(pairs, runtime.flows, key_hasher(runtime.settings))
    except ValueError as exc:
        raise HTTPException(422, {"message": str(exc), "field": "key"}) from None
    rows: list[dict[str, Any]] = []
    for t in sorted(scope):
        rows += await asyncio.to_thread(bus.index.search, tenant=t, flow=flow, state=state,
                                        since=since, until=until, keys=keys, limit=limit)
    rows.sort(key=lambda r: r["created_at"], reverse=True)
    return [r for r in rows if who.may("read", r["tenant"], tenants)
            or await _own(bus, who, r["id"])][:limit]


def _key_pairs(request: Request, key: list[str]) -> list[tuple[str, str]]:
    pairs = [(n, v) for n, v in request.query_params.multi_items() if n not in FILTERS]
    for item in key:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise HTTPException(422, {"message": f"{item!r}: expected NAME=VALUE",
                                      "field": "key"})
        pairs.append((name, value))
    return pairs


async def _own(bus: Any, who: Identity, doc_id: str) -> bool:
    state = await bus.client.status(doc_id)
    return state is not None and sees(who, state, bus.client.runtime.tenants)


@router.get("/{doc_id}", summary="a document's state", openapi_extra=permission("read"))
async def status(request: Request, who: Who, doc_id: str) -> dict[str, Any]:
    """The document's state; ``submitted`` while the bus has not routed it yet."""
    try:
        return _view(await visible_state(request, who, doc_id))
    except HTTPException as exc:
        pending = await _pending(request, who, doc_id) if exc.status_code == 404 else None
        if pending is None:
            raise
        return _pending_view(pending)


async def _pending(request: Request, who: Identity, doc_id: str) -> dict[str, Any] | None:
    """The door's receipt of a document not routed yet, if the caller may see it (the
    rule of ``sees``: a document whose state is hidden from the caller has its receipt
    hidden alike)."""
    bus = bus_of(request)
    got = await asyncio.to_thread(bus.receipts.get, doc_id)
    tenants = bus.client.runtime.tenants
    if got is None or not may_see(who, got["tenant"], got["producer"], tenants):
        return None
    return got


def _pending_view(got: dict[str, Any]) -> dict[str, Any]:
    return {"id": got["id"], "tenant": got["tenant"], "flow": got["flow"],
            "state": "submitted", "step": None, "error": None, "duplicate_of": None,
            "steps": [], "created_at": got["created_at"], "updated_at": got["created_at"]}


@router.get("/{doc_id}/journal", summary="a document's journal",
            openapi_extra=permission("journal"))
async def journal(request: Request, who: Who, doc_id: str) -> dict[str, Any]:
    await visible_state(request, who, doc_id, "journal")
    return {"events": await asyncio.to_thread(bus_of(request).index.events, doc_id)}


def files_of(state: DocumentState) -> list[tuple[FileRef, dict[str, Any]]]:
    """A document's submitted files, then its artefacts (signed versions marked)."""
    env = state.envelope
    assert env is not None
    found = [(ref, {"kind": "submitted", "role": ref.role.value}) for ref in env.files]
    found += [(a.file, {"kind": a.kind, "step": a.step, "signed": a.kind == "signed"})
              for a in state.artefacts]
    return found


async def _visible_files(request: Request, who: Identity, doc_id: str
                         ) -> tuple[str, list[tuple[FileRef, dict[str, Any]]]]:
    """The tenant and files of a document the caller may read: submitted files and every
    artefact, or only the submitted files, from the door's receipt, while the router has
    not had the document yet."""
    try:
        state = await visible_state(request, who, doc_id)
    except HTTPException as exc:
        pending = await _pending(request, who, doc_id) if exc.status_code == 404 else None
        if pending is None:
            raise
        return pending["tenant"], [
            (FileRef.model_validate(f), {"kind": "submitted", "role": f["role"]})
            for f in pending["files"]]
    assert state.envelope is not None
    return state.envelope.tenant, files_of(state)


@router.get("/{doc_id}/artefacts", summary="a document's files and artefacts",
            openapi_extra=permission("read"))
async def artefacts(request: Request, who: Who, doc_id: str) -> dict[str, Any]:
    _, files = await _visible_files(request, who, doc_id)
    return {"files": [{"name": ref.name, "sha256": ref.sha256, "size": ref.size,
                       "media_type": ref.media_type, **extra,
                       "href": f"/v1/documents/{doc_id}/files/{ref.sha256}"}
                      for ref, extra in files]}


@router.get("/{doc_id}/files/{sha256}", summary="download one file (streamed)",
            openapi_extra=permission("read"), response_class=StreamingResponse)
async def download(request: Request, who: Who, doc_id: str, sha256: str) -> StreamingResponse:
    tenant, files = await _visible_files(request, who, doc_id)
    ref = next((r for r, _ in files if r.sha256 == sha256), None)
    if ref is None:
        raise HTTPException(404, {"message": f"document {doc_id} has no file {sha256}",
                                  "field": "sha256"})
    chunks = bus_of(request).client.runtime.store.iter_file(tenant, ref)
    return StreamingResponse(chunks, media_type=ref.media_type, headers={
        "Content-Disposition": f"attachment; filename=\"{_ascii(ref.name)}\"",
        "Content-Length": str(ref.size)})


def _ascii(name: str) -> str:
    return "".join(c if c.isascii() and c not in '"\\' else "_" for c in name)


@router.get("/{doc_id}/export", summary="every file, artefact and record as a ZIP",
            openapi_extra=permission("export"), response_class=FileResponse)
async def export(request: Request, who: Who, doc_id: str) -> FileResponse:
    await visible_state(request, who, doc_id, "export")
    tmp = Path(tempfile.mkdtemp(prefix="demat-export-"))
    zip_path = await asyncio.to_thread(_export_zip, request, doc_id, tmp)
    return FileResponse(zip_path, media_type="application/zip", filename=f"{doc_id}.zip",
                        background=BackgroundTask(shutil.rmtree, tmp, True))


def _export_zip(request: Request, doc_id: str, tmp: Path) -> Path:
    folder = tmp / doc_id
    export_document(bus_of(request).client.runtime, doc_id, folder)
    return zip_folder(folder, tmp / f"{doc_id}.zip")


def zip_folder(folder: Path, zip_path: Path) -> Path:
    """Every file under ``folder`` into ``zip_path``, by its path relative to ``folder``."""
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder))
    return zip_path

"""``/v1/uploads``: large files sent in chunks, resumable, then submitted as a document.

1. ``POST /v1/uploads`` ``{"tenant", "name", "size"}`` opens an upload (``Location``);
2. ``PATCH <location>`` with ``Upload-Offset`` and the chunk as body (``Content-Length``)
   stores it; the answer's ``Upload-Offset`` is where the next chunk starts; a chunk whose
   answer was lost can be sent again;
3. ``HEAD <location>`` says where an interrupted upload stands;
4. ``POST /v1/documents/uploaded`` ``{"flow", "tenant", "metadata", "uploads": [ids]}``
   submits a document of those files (the first is the main one).

A chunk is streamed to a temporary file, then to the object store: the API process holds
no more than one multipart part of it in memory, whatever the file's size.
"""

from __future__ import annotations

import asyncio
import tempfile
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from bus import intake
from bus.api.auth import bus_of, forbidden, permission
from bus.api.documents import Who, accepted, publish_as
from bus.identity import Identity
from bus.uploads import Upload, UploadError, UploadMissing, Uploads
from schemas.envelope import FileRole

router = APIRouter(tags=["uploads"])
MAX_UPLOAD = 64 * 1024**3
SPOOL_CHUNK = 1024 * 1024


class NewUpload(BaseModel):
    tenant: str
    name: str = Field(min_length=1, max_length=255)
    size: int = Field(gt=0)
    # the flow the file is for: its limits (and the tenant's) bound the size from the start
    flow: str | None = None


class UploadedDocument(BaseModel):
    flow: str
    tenant: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    uploads: list[str] = Field(min_length=1, max_length=100)


def _uploads(request: Request) -> Uploads:
    runtime = bus_of(request).client.runtime
    largest = max(runtime.flows.get(n).limits.max_file_bytes for n in runtime.flows.names())
    return Uploads(runtime.store, max_size=min(MAX_UPLOAD, largest))


def _size_limit(request: Request, body: NewUpload) -> int | None:
    """The largest file ``body.flow`` takes from ``body.tenant`` (``None``: no flow named)."""
    if body.flow is None:
        return None
    runtime = bus_of(request).client.runtime
    try:
        flow = runtime.flows.get(body.flow)
    except KeyError as exc:
        raise HTTPException(422, {"message": str(exc.args[0]), "field": "flow"}) from None
    try:
        return intake.flow_limits(flow, runtime.tenants.get(body.tenant)).max_file_bytes
    except KeyError as exc:
        raise HTTPException(422, {"message": str(exc.args[0]), "field": "tenant"}) from None


def _location(upload: Upload) -> str:
    return f"/v1/uploads/{upload.tenant}/{upload.id}"


def _mine(request: Request, who: Identity, tenant: str, upload_id: str) -> Upload:
    """The caller's own upload (404 for anyone else's, or another tenant's)."""
    try:
        upload = _uploads(request).get(tenant, upload_id)
    except UploadMissing:
        upload = None
    tenants = bus_of(request).client.runtime.tenants
    if upload is None or upload.owner != who.login or not who.may("submit", tenant, tenants):
        raise HTTPException(404, {"message": "no such upload", "field": "upload_id"})
    return upload


def _refused(exc: UploadError) -> HTTPException:
    return HTTPException(409 if exc.field == "offset" else 422,
                         {"message": str(exc), "field": exc.field})


@router.post("/v1/uploads", status_code=201, summary="open a resumable upload",
             openapi_extra=permission("submit"))
async def open_upload(request: Request, who: Who, body: NewUpload) -> JSONResponse:
    if not who.may("submit", body.tenant, bus_of(request).client.runtime.tenants):
        raise forbidden("uploading", body.tenant)
    limit = _size_limit(request, body)
    try:
        upload = await asyncio.to_thread(_uploads(request).start, body.tenant, body.name,
                                         body.size, owner=who.login, max_size=limit)
    except UploadError as exc:
        raise _refused(exc) from None
    return JSONResponse(upload.as_dict() | {"location": _location(upload)}, status_code=201,
                        headers={"Location": _location(upload), "Upload-Offset": "0"})


@router.head("/v1/uploads/{tenant}/{upload_id}", summary="where an upload stands",
             openapi_extra=permission("submit"))
async def upload_offset(request: Request, who: Who, tenant: str, upload_id: str) -> Response:
    upload = await asyncio.to_thread(_mine, request, who, tenant, upload_id)
    return Response(status_code=200, headers={"Upload-Offset": str(upload.received),
                                              "Upload-Length": str(upload.size)})


@router.patch("/v1/uploads/{tenant}/{upload_id}", status_code=204,
              summary="send the next chunk", openapi_extra=permission("submit"))
async def send_chunk(request: Request, who: Who, tenant: str, upload_id: str,
                     offset: Annotated[int, Header(alias="Upload-Offset", ge=0)],
                     length: Annotated[int, Header(alias="Content-Length", gt=0)]
                     ) -> Response:
    await asyncio.to_thread(_mine, request, who, tenant, upload_id)
    folder = bus_of(request).client.runtime.settings.var_dir / "tmp"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryFile(prefix="demat-chunk-", dir=folder) as spool:
        received = 0
        async for piece in request.stream():
            received += len(piece)
            if received > length:  # never more on disk than the chunk announced
                raise HTTPException(422, {"message": f"length: more than the {length} "
                                          "bytes announced", "field": "length"})
            await asyncio.to_thread(spool.write, piece)
        await asyncio.to_thread(spool.seek, 0)
        try:
            upload = await asyncio.to_thread(_uploads(request).append, tenant, upload_id,
                                             offset, spool, length)
        except UploadError as exc:
            raise _refused(exc) from None
    return Response(status_code=204, headers={"Upload-Offset": str(upload.received)})


@router.post("/v1/documents/uploaded", status_code=202, tags=["documents"],
             summary="submit a document of uploaded files", openapi_extra=permission("submit"))
async def submit_uploaded(request: Request, who: Who, body: UploadedDocument) -> JSONResponse:
    bus = bus_of(request)
    runtime = bus.client.runtime
    if not who.may("submit", body.tenant, runtime.tenants):
        raise forbidden("submitting", body.tenant)
    if body.flow not in runtime.flows.names():
        raise HTTPException(422, {"message": f"unknown flow {body.flow!r}", "field": "flow"})
    encrypt = runtime.flows.get(body.flow).encrypt_files
    refs = []
    for i, upload_id in enumerate(body.uploads):
        await asyncio.to_thread(_mine, request, who, body.tenant, upload_id)
        try:
            refs.append(await asyncio.to_thread(
                _uploads(request).complete, body.tenant, upload_id,
                role=FileRole.MAIN if i == 0 else FileRole.ANNEX, encrypt=encrypt))
        except UploadError as exc:
            raise HTTPException(422, {"message": f"uploads[{i}]: {exc}",
                                      "field": f"uploads[{i}]"}) from None
    env = bus.client.envelope(body.flow, body.tenant, body.metadata, None, None, refs)
    await asyncio.to_thread(intake.check_envelope, env, runtime.flows, runtime.tenants)
    return accepted(await publish_as(bus, who, env))

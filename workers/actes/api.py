"""``/v1/actes``: the ``demat acte`` commands over HTTP (served by ``demat serve`` through
the plug-in registry). A cancellation or an answer is a document of flow
``acte-followup`` submitted with the caller as its producer, after the flow's checks
(a refusal answers 422 naming the field); another tenant's acte, or a document that is
not an acte, answers 404.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from bus.api.auth import bus_of, forbidden, permission, visible_state
from bus.api.documents import MAX_FILES, Who, accepted, spool, submit_as
from bus.client import FileInput
from bus.identity import Identity
from bus.intake import SubmissionError
from bus.plugins import REGISTRY
from schemas.envelope import utcnow
from schemas.messages import DocumentState
from workers.actes.acte import answer_metadata, cancellation, known_letters, require_acte

router = APIRouter(prefix="/v1/actes", tags=["actes"])
FOLLOWUP = "acte-followup"


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=2000, description="why (kept in the request file)")


async def _acte(request: Request, who: Identity, doc_id: str, need: str) -> DocumentState:
    """The acte ``doc_id`` if the caller sees it (else 404) and may ``need`` (else 403)."""
    state = await visible_state(request, who, doc_id)
    try:
        require_acte(state, doc_id)
    except LookupError:
        raise HTTPException(404, {"message": "no such acte", "field": "doc_id"}) from None
    assert state.envelope is not None
    tenant = state.envelope.tenant
    if not who.may(need, tenant, bus_of(request).client.runtime.tenants):
        raise forbidden(need, tenant)
    return state


@router.post("/{doc_id}/cancel", status_code=202, summary="cancel an acknowledged acte",
             openapi_extra=permission("cancel"))
async def cancel(request: Request, who: Who, doc_id: str,
                 body: CancelRequest | None = None) -> JSONResponse:
    """Submits the cancellation request (``demat acte cancel``); the prefecture's
    ``ARAnnulation`` ends it. 422 if the acte is not acknowledged."""
    state = await _acte(request, who, doc_id, "cancel")
    name, content, meta = cancellation(state, (body or CancelRequest()).reason, utcnow())
    with tempfile.TemporaryDirectory(prefix="demat-api-") as tmp:
        path = Path(tmp) / name
        await asyncio.to_thread(path.write_bytes, content)
        receipt = await submit_as(bus_of(request), who, FOLLOWUP, [FileInput(path, name=name)],
                                  tenant=state.envelope.tenant, metadata=meta,
                                  correlation_id=doc_id, flow_checks=True)
    return accepted(receipt, acte_document=doc_id)


@router.get("/{doc_id}/letters", summary="prefecture letters received about an acte",
            openapi_extra=permission("read"))
async def letters(request: Request, who: Who, doc_id: str) -> dict[str, Any]:
    return {"letters": known_letters(await _acte(request, who, doc_id, "read"))}


@router.post("/{doc_id}/reply", status_code=202, summary="answer a prefecture letter",
             openapi_extra=permission("submit"))
async def reply(request: Request, who: Who, doc_id: str,
                files: Annotated[list[UploadFile], File(description="the answer PDF, then "
                                                        "any annexes")],
                letter: Annotated[int | None, Form(description="S²LOW id of the letter "
                                                   "(default: the only answerable one)")] = None,
                refuse: Annotated[bool, Form()] = False,
                typology: Annotated[str, Form(max_length=10)] = "99_AU") -> JSONResponse:
    """Submits the answer (``demat acte reply``); 422 naming ``metadata.letter_id`` when
    the acte has no such letter, or several and none is named."""
    state = await _acte(request, who, doc_id, "submit")
    if len(files) > MAX_FILES:
        raise SubmissionError("files", f"at most {MAX_FILES} files")
    meta = answer_metadata(doc_id, letter, refuse, typology)
    with tempfile.TemporaryDirectory(prefix="demat-api-") as tmp:
        inputs = await asyncio.to_thread(spool, files, Path(tmp))
        receipt = await submit_as(bus_of(request), who, FOLLOWUP, inputs,
                                  tenant=state.envelope.tenant, metadata=meta,
                                  correlation_id=doc_id, flow_checks=True)
    return accepted(receipt, acte_document=doc_id)


REGISTRY.add_api_router(router)

"""An acte document as the bus holds it: its metadata, files and tenant ACTES identity."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from bus.intake import SubmissionError
from bus.plugins import REGISTRY
from bus.tenants import Tenant
from schemas.acte import ActeDocumentMetadata, ActeFollowupMetadata, TenantActesSettings
from schemas.envelope import Envelope, FileRef
from schemas.errors import first_error

PDF = "application/pdf"


def actes_settings(tenant: Tenant) -> TenantActesSettings:
    """The tenant's ``settings.actes`` as the ACTES envelope needs them."""
    raw: Any = tenant.settings.get("actes")
    if not isinstance(raw, dict):
        raise SubmissionError("tenant", f"tenant {tenant.siren} has no 'actes' settings "
                              "(departement, arrondissement, nature_autorite, ...)")
    fields = set(TenantActesSettings.model_fields)
    try:
        return TenantActesSettings.model_validate(
            {k: v for k, v in raw.items() if k in fields} | {"siren": tenant.siren})
    except ValidationError as exc:
        raise SubmissionError(*first_error(exc, "tenant.actes")) from None


def acte_metadata(env: Envelope) -> ActeDocumentMetadata:
    """The acte part of the metadata (flows built on acte, e.g. HR decrees, add fields)."""
    fields = ActeDocumentMetadata.model_fields
    return ActeDocumentMetadata.model_validate(
        {k: v for k, v in env.metadata.items() if k in fields})


def followup_metadata(env: Envelope) -> ActeFollowupMetadata:
    return ActeFollowupMetadata.model_validate(env.metadata)


def acte_files(env: Envelope, meta: ActeDocumentMetadata) -> tuple[FileRef, list[FileRef]]:
    """The main document (the first file, a PDF) and the annexes in the order of
    ``metadata.annexes``, matched by file name; every other file must be described there."""
    main, others = env.files[0], env.files[1:]
    if main.media_type != PDF:
        raise SubmissionError("files[0]", f"the main document {main.name!r} must be a PDF "
                              f"(its content is {main.media_type})")
    by_name = {ref.name: i for i, ref in enumerate(others, start=1)}
    described = {entry.file_name for entry in meta.annexes}
    for i, ref in enumerate(others, start=1):
        if ref.name not in described:
            raise SubmissionError(f"files[{i}]", f"annex {ref.name!r} is not described in "
                                  "metadata.annexes (each annex needs its typology code)")
    annexes = []
    for n, entry in enumerate(meta.annexes):
        if entry.file_name not in by_name:
            raise SubmissionError(f"metadata.annexes.{n}.file_name",
                                  f"{entry.file_name!r} is not among the submitted files")
        annexes.append(env.files[by_name[entry.file_name]])
    return main, annexes


def official_id(state: Any) -> str | None:
    """The official ID the prefecture gave an acte document (``None`` before its ARActe)."""
    for rec in state.steps:
        if rec.status == "done" and rec.output.get("official_id") and rec.output.get(
                "received_at"):
            return rec.output["official_id"]
    return None


def transaction_id(state: Any) -> int | None:
    """The S²LOW transaction of an acte document, once transmitted."""
    for rec in state.steps:
        if rec.status == "done" and rec.output.get("transaction_id") is not None:
            return int(rec.output["transaction_id"])
    return None


def known_letters(state: Any) -> list[dict[str, Any]]:
    """Prefecture letters recorded about an acte document (``letters`` of any step)."""
    seen: dict[int, dict[str, Any]] = {}
    for rec in state.steps:
        for source in (rec.progress, rec.output):
            for letter in source.get("letters") or []:
                seen[int(letter["id"])] = letter
    return [seen[k] for k in sorted(seen)]


def cancellation_request(acte_document: str, official: str, reason: str,
                         requested_at: datetime) -> bytes:
    """The authority's record of a cancellation request (JSON): S²LOW cancels by
    transaction id alone (``actes_transac_cancel.php``) and the prefecture answers with
    the ``Annulation``/``ARAnnulation`` messages, so the document keeps what was asked,
    of which acte, why and when."""
    return json.dumps({"request": "annulation", "acte_document": acte_document,
                       "official_id": official, "reason": reason,
                       "requested_at": requested_at.isoformat()},
                      ensure_ascii=False, indent=2).encode()


def require_acte(state: Any, doc_id: str) -> Any:
    """``state`` if it is an acte document's (``LookupError`` otherwise)."""
    if state is None or state.envelope is None or state.envelope.flow != "acte":
        raise LookupError(f"no acte document {doc_id} on this bus")
    return state


@REGISTRY.provides("actes.cancellation")
def cancellation(state: Any, reason: str, at: datetime) -> tuple[str, bytes, dict[str, Any]]:
    """What cancelling the acte of ``state`` submits (flow ``acte-followup``): the request
    file's name and content, and the metadata."""
    doc_id = state.doc_id
    official = official_id(state) or doc_id
    return (f"demande-annulation-{official}.json",
            cancellation_request(doc_id, official, reason, at),
            {"acte_document": doc_id, "action": "cancel", "reason": reason})


def answer_metadata(acte_document: str, letter_id: int | None, refuse: bool,
                    typology: str) -> dict[str, Any]:
    """The metadata of an answer to a prefecture letter (flow ``acte-followup``)."""
    meta: dict[str, Any] = {"acte_document": acte_document, "action": "answer",
                            "refuse": refuse, "typology": typology}
    if letter_id is not None:
        meta["letter_id"] = letter_id
    return meta

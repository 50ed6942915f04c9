"""Step ``sign``: seal locally (connector type ``seal``) or through an i-Parapheur workflow.

A local seal answers at once. An i-Parapheur folder is created once per document (the
client asks by name first), then polled through waiting tasks (no blocked consumer)
until the folder is finished (signed files kept and verified) or rejected (the document
ends ``rejected`` with the signer's reason; the rejected folder is deleted). The flow's
wait policy sets the deadline. The output names every signer, signing time and
signature digest: the journal keeps it with the step-done event.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from connectors.errors import PermanentError
from connectors.iparapheur.client import IparapheurClient, UploadFile
from connectors.seal import LocalSeal, SealInputError, signed_name
from connectors.seal.signers import signature_digest
from connectors.seal.verify import SignatureCheck, verify_cms_detached, verify_embedded
from schemas.envelope import FileRef, FileRole
from workers.step import StepContext, StepError, StepRejected, StepResultData, Waiting, step

KIND = "sign"
SIGNATURE_ACTIONS = {"SIGNATURE", "EXTERNAL_SIGNATURE", "SEAL"}


@step("sign")
async def run(ctx: StepContext) -> StepResultData | Waiting:
    """Seal or put to signature every main file of the document."""
    connector = ctx.connector()
    if getattr(connector, "instant", False):
        return await _seal(ctx, connector)
    return await _workflow(ctx, connector)


def signed_file(ctx: StepContext, original: FileRef, step: str = "sign") -> FileRef:
    """The signed version of the main file when step ``step`` signed it, else ``original``
    (what transmitting or depositing steps send on)."""
    value = (ctx.task.outputs.get(step) or {}).get("signed_file")
    if not value:
        return original
    return FileRef.model_validate(value | {"role": original.role})


def files_to_sign(ctx: StepContext) -> list[tuple[int, FileRef]]:
    """The main files (every non-signature file when none is marked main)."""
    files = list(enumerate(ctx.task.envelope.files))
    main = [(i, f) for i, f in files if f.role == FileRole.MAIN]
    return main or [(i, f) for i, f in files if f.role != FileRole.SIGNATURE]


async def _read(ctx: StepContext, ref: FileRef) -> bytes:
    return await asyncio.to_thread(ctx.runtime.store.read_file, ctx.tenant.siren, ref)


# --- local seal -----------------------------------------------------------------------


async def _seal(ctx: StepContext, seal: LocalSeal) -> StepResultData:
    signatures = []
    for index, ref in files_to_sign(ctx):
        data = await _read(ctx, ref)
        try:
            result = await seal.seal(ctx.tenant.siren, data, ref.media_type)
        except SealInputError as exc:
            raise StepError(f"file {ref.name!r}: {exc}", field=f"files[{index}]") from None
        media = "application/pkcs7-signature" if result.detached else ref.media_type
        art = await ctx.keep(result.data, name=signed_name(ref.name, result), kind="signed",
                             media_type=media, unique=result.format == "pades")
        signatures.append({"file": ref.name, "artefact": art.file.model_dump(mode="json")}
                          | _facts(result.facts()))
    identity = seal.identity(ctx.tenant.siren)
    return StepResultData(output={
        "mode": "seal", "signer": identity.subject, "certificate": identity.describe(),
        "signed_at": signatures[0]["signed_at"] if signatures else None,
        "signed_file": _first_signed(signatures), "signatures": signatures})


def _first_signed(signatures: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first signed file with its signature inside (what later steps send on)."""
    return next((s["artefact"] for s in signatures if not s.get("detached")), None)


def _facts(facts: dict[str, Any]) -> dict[str, Any]:
    return {k: facts[k] for k in ("format", "detached", "signer", "signed_at",
                                  "signature_sha256", "timestamped")}


# --- i-Parapheur ----------------------------------------------------------------------


async def _workflow(ctx: StepContext, client: IparapheurClient) -> StepResultData | Waiting:
    env = ctx.task.envelope
    progress = dict(ctx.task.progress)
    if not progress.get("folder_id"):
        uploads = [UploadFile(ref.name, await _read(ctx, ref), ref.media_type)
                   for _, ref in files_to_sign(ctx)]
        subtype = env.metadata.get("signature_subtype") or ctx.step.options.get("subtype")
        folder, created = await client.create(
            folder_name(env.id), uploads, subtype=subtype,
            metadata={"demat_document_id": env.id, "demat_tenant": env.tenant,
                      **(env.metadata.get("parapheur_metadata") or {})})
        progress = {"folder_id": folder["id"], "created": created,
                    "subtype": folder.get("subtypeId", subtype or client.subtype_id)}
    else:
        folder = await client.folder(progress["folder_id"])
    state = folder.get("state")
    if state in ("DRAFT", "PENDING"):
        return _still_waiting(client, folder, progress)
    history = await client.history(folder["id"])
    if state == "REJECTED":
        await _reject(client, folder, history)
    if state != "FINISHED":
        raise PermanentError(f"i-Parapheur folder {folder['id']}: unexpected state {state!r}",
                             partner="iparapheur")
    return await _finished(ctx, client, folder, history, progress)


def folder_name(doc_id: str) -> str:
    """The folder's name at i-Parapheur: the document id (what lookups ask for)."""
    return f"demat-{doc_id}"


def _still_waiting(client: IparapheurClient, folder: dict[str, Any],
                   progress: dict[str, Any]) -> Waiting:
    steps = folder.get("stepList") or []
    current = next((s for s in steps if s.get("state") == "CURRENT"), None)
    done = [s["desk"]["name"] for s in steps if s.get("state") == "VALIDATED"]
    who = f"{current['action']} by {current['desk']['name']}" if current else "to start"
    progress = progress | {"state": folder.get("state"), "validated": done,
                           "current": who}
    return Waiting(poll_after=client.poll_seconds, progress=progress,
                   note=f"i-Parapheur folder {folder['id']}: awaiting {who}")


async def _reject(client: IparapheurClient, folder: dict[str, Any],
                  history: list[dict[str, Any]]) -> None:
    step = next((s for s in folder.get("stepList") or [] if s.get("state") == "REJECTED"), {})
    entry = next((h for h in reversed(history) if h.get("state") == "REJECTED"), {})
    who = (step.get("desk") or {}).get("name") or entry.get("user") or "a signer"
    reason = step.get("publicAnnotation") or entry.get("publicAnnotation") or "no reason given"
    if client.delete_rejected:
        await client.delete(folder["id"])
    raise StepRejected(f"i-Parapheur folder {folder['id']} rejected by {who}: {reason}",
                       partner="iparapheur")


async def _finished(ctx: StepContext, client: IparapheurClient, folder: dict[str, Any],
                    history: list[dict[str, Any]], progress: dict[str, Any]) -> StepResultData:
    originals = {ref.name: ref for _, ref in files_to_sign(ctx)}
    signatures = []
    for doc in folder.get("documentList") or []:
        data = await client.document(folder["id"], doc["id"])
        name, media = doc.get("name", "document"), doc.get("mediaType", "")
        detached = doc.get("detachedSignatures") or []
        if not detached:
            checks = await verify_embedded(data, media)
            signatures += await _kept(ctx, data, _signed(name), media, checks, "embedded")
            continue
        original = originals.get(name)
        source = await _read(ctx, original) if original else data
        for sig in detached:
            cms = await client.detached_signature(folder["id"], doc["id"], sig["id"])
            check = await verify_cms_detached(source, cms)
            signatures += await _kept(ctx, cms, sig.get("name") or f"{name}.p7s",
                                      "application/pkcs7-signature", [check], "detached")
    await ctx.keep(json.dumps({"folder": folder, "history": history}, indent=2,
                              ensure_ascii=False).encode(), name="iparapheur-folder.json",
                   kind="partner-reply", media_type="application/json")
    signers = [{"action": h.get("action"), "signer": h.get("user"), "at": h.get("date")}
               for h in history if h.get("action") in SIGNATURE_ACTIONS | {"VISA"}
               and h.get("state") == "VALIDATED"]
    return StepResultData(output={
        "mode": "iparapheur", "folder_id": folder["id"], "subtype": progress.get("subtype"),
        "folder_created_here": bool(progress.get("created")), "signers": signers,
        "signer": signers[-1]["signer"] if signers else None,
        "signed_at": signers[-1]["at"] if signers else None,
        "signed_file": _first_signed(signatures), "signatures": signatures})


def _signed(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return f"{stem}-signed.{ext}" if dot else f"{name}-signed"


async def _kept(ctx: StepContext, data: bytes, name: str, media: str,
                checks: list[SignatureCheck], how: str) -> list[dict[str, Any]]:
    """Keep a signed file or signature after checking that every signature verifies."""
    bad = [c for c in checks if not c.intact]
    if not checks or bad:
        why = bad[0].error if bad else "no signature found"
        raise PermanentError(f"i-Parapheur returned {name!r} whose signature does not verify: "
                             f"{why}", partner="iparapheur")
    art = await ctx.keep(data, name=name, kind="signed", media_type=media)
    fmt = "cms" if how == "detached" else checks[0].format
    digest = signature_digest(data, "pades" if fmt == "pades" else
                              "xades" if fmt in ("xades", "xmldsig") else "cms")
    return [{"file": name, "artefact": art.file.model_dump(mode="json"), "format": fmt,
             "detached": how == "detached",
             "signatures": len(checks), "signer": checks[-1].signer,
             "signed_at": checks[-1].signed_at, "signature_sha256": digest,
             "signers": [c.signer for c in checks]}]

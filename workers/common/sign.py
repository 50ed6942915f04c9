"""Step ``sign``: seal locally (connector type ``seal``) or through an i-Parapheur workflow.

A local seal answers at once. An i-Parapheur folder is created once per document (the
client asks by name first), then its PREMIS summary is polled through waiting tasks (no
blocked consumer) until the folder is finished (the ZIP's signed files kept and verified,
its PREMIS history and slip kept) or rejected (the document ends ``rejected`` with the
signer's reason; the history is kept and the rejected folder deleted). The flow's
wait policy sets the deadline. The output names every signer, signing time and
signature digest: the journal keeps it with the step-done event.
"""

from __future__ import annotations

import mimetypes
from typing import Any

from connectors.errors import PermanentError
from connectors.iparapheur.client import IparapheurClient, UploadFile
from connectors.iparapheur.premis import Premis
from connectors.seal.local import LocalSeal, SealInputError, signed_name
from connectors.seal.signers import signature_digest
from connectors.seal.verify import SignatureCheck, verify_cms_detached, verify_embedded
from schemas.envelope import FileRef, FileRole
from workers.step import StepContext, StepError, StepRejected, StepResultData, Waiting, step

KIND = "sign"
SIGNATURE_ACTIONS = {"SIGNATURE", "EXTERNAL_SIGNATURE", "SEAL"}


@step("sign", chainable=True)
async def run(ctx: StepContext) -> StepResultData | Waiting:
    """Seal or put to signature every main file of the document."""
    connector = ctx.connector()
    if getattr(connector, "instant", False):
        return await _seal(ctx, connector)
    return await _workflow(ctx, connector)


def files_to_sign(ctx: StepContext) -> list[tuple[int, FileRef]]:
    """The main files (every non-signature file when none is marked main)."""
    files = list(enumerate(ctx.task.envelope.files))
    main = [(i, f) for i, f in files if f.role == FileRole.MAIN]
    return main or [(i, f) for i, f in files if f.role != FileRole.SIGNATURE]


async def _read(ctx: StepContext, ref: FileRef) -> bytes:
    return await ctx.read_file(ref)


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


# --- i-Parapheur ---------------------------------------------------------------------


async def _workflow(ctx: StepContext, client: IparapheurClient) -> StepResultData | Waiting:
    """Create the folder once, then follow its PREMIS summary until it ends."""
    env = ctx.task.envelope
    progress = dict(ctx.task.progress)
    metadata = {str(k): str(v) for k, v in (env.metadata.get("parapheur_metadata") or {}).items()}
    if not progress.get("folder_id"):
        uploads = [UploadFile(ref.name, await _read(ctx, ref), ref.media_type)
                   for _, ref in files_to_sign(ctx)]
        subtype = env.metadata.get("signature_subtype") or ctx.step.options.get("subtype")
        folder, created = await client.create(folder_name(env.id), uploads, subtype=subtype,
                                              metadata=metadata)
        progress = {"folder_id": folder["id"], "created": created,
                    "subtype": subtype or client.subtype_id}
    folder_id = progress["folder_id"]
    summary = await client.summary(folder_id)
    if summary.state == "DRAFT":
        return await _draft(client, folder_id, summary, progress, metadata)
    if summary.state == "PENDING":
        return _still_waiting(client, folder_id, summary, progress)
    if summary.state == "REJECTED":
        await _reject(ctx, client, folder_id, summary)
    return await _finished(ctx, client, folder_id, progress)


async def _draft(client: IparapheurClient, folder_id: str, summary: Premis,
                 progress: dict[str, Any], metadata: dict[str, str]) -> Waiting:
    """A draft seen twice (not a folder still being initialised) is started here."""
    started = bool(progress.get("draft_seen") and summary.start_task())
    if started:
        await client.start(folder_id, summary, metadata)
    return Waiting(poll_after=client.poll_seconds,
                   progress=progress | {"state": "PENDING" if started else "DRAFT",
                                        "draft_seen": True},
                   note=f"i-Parapheur folder {folder_id}: "
                        + ("started" if started else "draft, to start at the next poll"))


def folder_name(doc_id: str) -> str:
    """The folder's name at i-Parapheur: the document id (what lookups ask for)."""
    return f"demat-{doc_id}"


def _still_waiting(client: IparapheurClient, folder_id: str, summary: Premis,
                   progress: dict[str, Any]) -> Waiting:
    current = summary.current()
    done = [f"{e.action} {summary.agent(e)}" for e in summary.performed()
            if e.action != "START"]
    who = f"{current.action} by {current.desk or 'a desk'}" if current else "to start"
    return Waiting(poll_after=client.poll_seconds,
                   progress=progress | {"state": "PENDING", "validated": done, "current": who},
                   note=f"i-Parapheur folder {folder_id}: awaiting {who}")


async def _reject(ctx: StepContext, client: IparapheurClient, folder_id: str,
                  summary: Premis) -> None:
    """Keep the folder's history, delete the folder, end the document ``rejected``."""
    event = summary.refusal()
    who = (f"{summary.agent(event)} ({event.desk})" if event and event.desk
           and event.desk != summary.agent(event) else
           summary.agent(event) if event else "a signer")
    reason = (event.note if event else "") or "no reason given"
    await ctx.keep(summary.to_xml(), name="iparapheur-premis.xml", kind="partner-reply",
                   media_type="application/xml")
    if client.delete_rejected:
        await client.delete(folder_id)
    raise StepRejected(f"i-Parapheur folder {folder_id} rejected by {who}: {reason}",
                       partner="iparapheur")


async def _finished(ctx: StepContext, client: IparapheurClient, folder_id: str,
                    progress: dict[str, Any]) -> StepResultData:
    """Keep and verify the signed documents, the PREMIS history and the slip of the ZIP."""
    _, folder = await client.download(folder_id)
    originals = {ref.name: ref for _, ref in files_to_sign(ctx)}
    signatures = []
    for name, data in folder.documents.items():
        original = originals.get(name)
        media = original.media_type if original else (
            mimetypes.guess_type(name)[0] or "application/octet-stream")
        detached = folder.detached.get(name) or {}
        if not detached:
            checks = await verify_embedded(data, media)
            signatures += await _kept(ctx, data, _signed(name), media, checks, "embedded",
                                      original=name)
            continue
        source = await _read(ctx, original) if original else data
        for sig_name, cms in detached.items():
            check = await verify_cms_detached(source, cms)
            signatures += await _kept(ctx, cms, sig_name, "application/pkcs7-signature",
                                      [check], "detached", original=name)
    history = await ctx.keep(folder.premis_xml, name="iparapheur-premis.xml",
                             kind="partner-reply", media_type="application/xml")
    if folder.bordereau:
        await ctx.keep(folder.bordereau[1], name=folder.bordereau[0], kind="partner-reply",
                       media_type="application/pdf")
    summary = folder.premis
    signers = [{"action": e.action, "signer": summary.agent(e), "desk": e.desk, "at": e.date}
               for e in summary.performed() if e.action in SIGNATURE_ACTIONS | {"VISA"}]
    return StepResultData(output={
        "mode": "iparapheur", "folder_id": folder_id, "subtype": progress.get("subtype"),
        "folder_created_here": bool(progress.get("created")), "signers": signers,
        "signer": signers[-1]["signer"] if signers else None,
        "signed_at": signers[-1]["at"] if signers else None,
        "signed_file": _first_signed(signatures), "signatures": signatures,
        "signature_history": history.file.model_dump(mode="json")})


def _signed(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return f"{stem}-signed.{ext}" if dot else f"{name}-signed"


async def _kept(ctx: StepContext, data: bytes, name: str, media: str,
                checks: list[SignatureCheck], how: str, *, original: str
                ) -> list[dict[str, Any]]:
    """Keep a signed file or signature (of the submitted file ``original``) after checking
    that every signature verifies."""
    bad = [c for c in checks if not c.intact]
    if not checks or bad:
        why = bad[0].error if bad else "no signature found"
        raise PermanentError(f"i-Parapheur returned {name!r} whose signature does not verify: "
                             f"{why}", partner="iparapheur")
    art = await ctx.keep(data, name=name, kind="signed", media_type=media)
    fmt = "cms" if how == "detached" else checks[0].format
    digest = signature_digest(data, "pades" if fmt == "pades" else
                              "xades" if fmt in ("xades", "xmldsig") else "cms")
    return [{"file": name, "original": original, "artefact": art.file.model_dump(mode="json"),
             "format": fmt,
             "detached": how == "detached",
             "signatures": len(checks), "signer": checks[-1].signer,
             "signed_at": checks[-1].signed_at, "signature_sha256": digest,
             "signers": [c.signer for c in checks]}]

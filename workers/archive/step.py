"""Step ``archive``: transfer the document to the tenant's electronic archive (SAE, role
``sae``) as a SEDA 2.1/2.2 SIP, then wait for its Acknowledgement and ArchiveTransferReply.

One document per SIP by default; with ``options.batch`` the document joins a batch
SIP built by the batcher service (see ``workers.archive.batch``). The SEDA description
comes from the flow's mapping (``options``) and the tenant's ``settings.archive``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bus.audit.events import complete_journal
from bus.audit.store import JournalStore
from bus.objectstore import IntegrityError, ObjectMissing
from bus.privacy import scrub_for
from connectors.errors import BusinessRefusal
from connectors.sae import seda
from connectors.sae.asalae import AsalaeClient, TransferLookup
from connectors.sae.sip import SipError
from schemas.archive import ArchiveOptions, BatchMembership, TenantArchiveSettings
from schemas.envelope import FileRef, FileRole
from schemas.messages import Artefact, JournalEvent
from workers.archive import batch, mapping
from workers.archive.exchange import (
    Replies,
    UnreadableReply,
    fetch_replies,
    refusal_message,
    send_sip,
    sent_manifest,
)
from workers.common.versions import archived_files
from workers.step import StepContext, StepError, StepResultData, Waiting, step

KIND = "archive"
MAX_TRANSFERS = 20  # transfers of one document (each refusal then replay uses a new id)
MEMBER_POLL_S = 30.0  # first fallback poll of a batch member (then doubling)
EVENT_FIELDS = {"event_id", "seq", "type", "state", "step", "at", "actor", "detail"}


@step("archive")
async def run(ctx: StepContext) -> StepResultData | Waiting:
    """Archive once: the archive is asked before any SIP is (re)sent."""
    try:
        options = mapping.step_options(ctx.step.options, ctx.step.name)
        settings = mapping.tenant_settings(ctx.tenant)
        sae: AsalaeClient = ctx.connector()
        if options.batch is not None:
            return await _batch_member(ctx, options, settings, sae)
        return await _single(ctx, options, settings, sae)
    except mapping.ArchiveConfigError as exc:
        raise StepError(str(exc), field=exc.field) from None
    except seda.SedaError as exc:
        raise StepError(f"SEDA description: {exc}", field="options") from None
    except (SipError, IntegrityError, ObjectMissing) as exc:
        raise StepError(f"SIP: {exc}", field="files") from None


# --- one document, one SIP ------------------------------------------------------------


async def _single(ctx: StepContext, options: ArchiveOptions, settings: TenantArchiveSettings,
                  sae: AsalaeClient) -> StepResultData | Waiting:
    store, tenant = ctx.runtime.store, ctx.tenant.siren
    transferring = settings.transferring_agency.identifier
    progress: dict[str, Any] = dict(ctx.task.progress)
    found: TransferLookup | None = None
    if "transfer_id" not in progress:
        transfer_id, found = await _transfer_id(ctx, sae, transferring)
        if found.known:
            manifest = await asyncio.to_thread(sent_manifest, store, tenant, transfer_id)
        else:
            manifest, found = await _send_document(ctx, options, settings, sae, transfer_id)
        progress = {"transfer_id": transfer_id, "sent_at": time.time(),
                    "manifest": manifest.model_dump(mode="json") if manifest else None}
    transfer_id = progress["transfer_id"]
    have_ack = FileRef.model_validate(progress["ack"]) if progress.get("ack") else None
    try:
        replies = await fetch_replies(store, sae, tenant, transferring, transfer_id,
                                      have_ack=have_ack, found=found)
    except UnreadableReply as exc:  # journaled with the failure: the reply is never lost
        ctx.artefacts.append(Artefact(file=exc.kept, step=ctx.step.name, kind="partner-reply"))
        raise
    if replies.ack is not None:
        progress["ack"] = replies.ack.model_dump(mode="json")
    problems = [*progress.get("reply_problems", []), *replies.problems]
    if problems:  # a reply kept although its schema refuses it: said in the output
        progress["reply_problems"] = problems
    if replies.reply is None:
        waited = time.time() - progress["sent_at"]
        note = "waiting for the archive's ATR" if replies.ack else "waiting for the ACK"
        return Waiting(poll_after=min(max(sae.poll_seconds, waited / 2), sae.max_poll_seconds),
                       progress=progress, note=f"transfer {transfer_id}: {note}")
    manifest_ref = FileRef.model_validate(progress["manifest"]) if progress["manifest"] else None
    _keep(ctx, manifest_ref, replies)
    reply = replies.reply
    if not reply.accepted:
        raise BusinessRefusal(f"{refusal_message(transfer_id, reply)} (ATR kept as object "
                              f"{replies.atr.sha256 if replies.atr else '?'})", partner="sae")
    return StepResultData(output={
        "transfer_id": transfer_id, "reply_code": reply.reply_code,
        "archival_id": reply.unit_ids.get(mapping.unit_id(ctx.task.doc_id)) or reply.archival_id,
        "seda_version": reply.version, "atr_id": reply.message_id, "batch": None,
        **({"reply_problems": problems} if problems else {})})


async def _transfer_id(ctx: StepContext, sae: AsalaeClient, transferring: str
                       ) -> tuple[str, TransferLookup]:
    """The transfer to follow: an accepted or pending one, else the first unused id
    (a refused transfer is never re-sent under the same identifier)."""
    base = f"DEMAT_{ctx.task.doc_id}"
    for n in range(1, MAX_TRANSFERS + 1):
        transfer_id = base if n == 1 else f"{base}_R{n}"
        found = await sae.lookup(transferring, transfer_id)
        if not found.known or found.atr is None:
            return transfer_id, found
        try:
            if seda.parse_transfer_reply(found.atr).accepted:
                return transfer_id, found
        except seda.SedaError:
            return transfer_id, found  # fetch_replies reports the invalid reply
    raise StepError(f"document {ctx.task.doc_id} was refused {MAX_TRANSFERS} times by the "
                    "archive", field="archive")


async def _send_document(ctx: StepContext, options: ArchiveOptions,
                         settings: TenantArchiveSettings, sae: AsalaeClient, transfer_id: str
                         ) -> tuple[FileRef, TransferLookup]:
    env, store, tenant = ctx.task.envelope, ctx.runtime.store, ctx.tenant
    needed = options.include_journal or options.include_artefacts
    events = await _journal(ctx) if needed else []
    journal = await _journal_file(ctx, events) if options.include_journal else None
    files = mapping.document_files(env, archived_files(ctx), journal, store,
                                   artefacts=_earlier_artefacts(ctx, options, events))
    unit = mapping.document_unit(env, tenant, options, settings, [f.object_id for f in files])

    def make_manifest(objects: list[seda.DataObject]) -> bytes:
        return seda.build_archive_transfer(mapping.transfer(
            settings, transfer_id, [unit], objects, document_type=unit.document_type or "",
            comment=f"demat-bus: document {env.id} ({env.flow})"))

    return await send_sip(store, sae, tenant.siren, settings.transferring_agency.identifier,
                          transfer_id, files, make_manifest, algorithm=settings.digest_algorithm)


async def _journal(ctx: StepContext) -> list[JournalEvent]:
    """The document's events from the journal segments; ``JournalIncomplete`` (retried)
    while they lack any event up to the steps whose outputs the task carries."""
    env = ctx.task.envelope
    journal = JournalStore(ctx.runtime.settings, ctx.runtime.store)
    return await asyncio.to_thread(complete_journal, journal, env.id,
                                   env.created_at.timestamp(), ctx.task.outputs)


async def _journal_file(ctx: StepContext, events: list[JournalEvent]) -> FileRef:
    """The document's journal (its events and step outputs) as a stored file."""
    env = ctx.task.envelope
    flows = ctx.runtime.flows  # personal metadata never in a journal in clear
    clean = env.model_copy(update={"metadata": scrub_for(env, flows, env.metadata)})
    data = mapping.journal_document(
        clean, [e.model_dump(mode="json", include=EVENT_FIELDS) for e in events],
        scrub_for(env, flows, ctx.task.outputs))
    return await asyncio.to_thread(ctx.runtime.store.put_bytes, env.tenant, data,
                                   name=mapping.JOURNAL_NAME, role=FileRole.ANNEX,
                                   media_type="application/json", encrypt=ctx.encrypt_files)


def _earlier_artefacts(ctx: StepContext, options: ArchiveOptions,
                       events: list[JournalEvent]) -> list[FileRef]:
    """Artefacts the document's earlier steps journaled (each file once)."""
    if not options.include_artefacts:
        return []
    seen: set[str] = set()
    refs = []
    for event in events:
        if event.step == ctx.step.name:
            continue
        for raw in event.detail.get("artefacts") or []:
            ref = FileRef.model_validate(raw)
            if ref.sha256 not in seen:
                seen.add(ref.sha256)
                refs.append(ref)
    return refs


def _keep(ctx: StepContext, manifest: FileRef | None, replies: Replies) -> None:
    """The manifest, ACK and ATR become artefacts of the step (written by export)."""
    for ref, kind in ((manifest, "generated"), (replies.ack, "partner-reply"),
                      (replies.atr, "partner-reply")):
        if ref is not None:
            ctx.artefacts.append(Artefact(file=ref, step=ctx.step.name, kind=kind))


# --- batch member -----------------------------------------------------------------------


async def _batch_member(ctx: StepContext, options: ArchiveOptions,
                        settings: TenantArchiveSettings, sae: AsalaeClient
                        ) -> StepResultData | Waiting:
    assert options.batch is not None
    env, store = ctx.task.envelope, ctx.runtime.store
    progress: dict[str, Any] = dict(ctx.task.progress)
    # a member not registered yet has no batch to find (a re-sent first task registers
    # again: the batcher drops a member it has placed already)
    record, size, archival_id = batch.told_outcome(progress) or (None, 0, None)
    if record is None and "group" in progress:  # a poll: the wake was lost or is to come
        record = await asyncio.to_thread(batch.member_batch, store, env.tenant, env.id)
    if record is None:
        _, _, max_wait = batch.limits(options.batch, settings)
        stale = time.time() - progress.get("registered_at", 0) > 2 * max_wait + 60
        if "group" not in progress or stale:
            progress = await _register(ctx, options, settings)
        return Waiting(poll_after=_member_poll(sae, progress), progress=progress,
                       note=f"in batch group {progress['group']}: waiting for the batch SIP")
    if record.status == "failed":
        raise StepError(f"batch {record.batch_id}: {record.error}",
                        field=record.error_field or "archive.batch")
    if record.status != "replied":
        progress = progress | {"batch_id": record.batch_id}
        return Waiting(poll_after=_member_poll(sae, progress), progress=progress,
                       note=f"batch {record.batch_id} {record.status}: waiting for its ATR")
    _keep(ctx, record.manifest, Replies(ack=record.ack, atr=record.atr))
    if record.reply_code != seda.ACCEPTED:
        raise BusinessRefusal(f"archive refused batch {record.batch_id} (transfer "
                              f"{record.transfer_id}): ReplyCode {record.reply_code}: "
                              f"{record.comment}", partner="sae")
    if not size:
        archival_id = await asyncio.to_thread(batch.member_archival_id, store, record, env.id)
    return StepResultData(output={
        "transfer_id": record.transfer_id, "reply_code": record.reply_code,
        "archival_id": archival_id, "batch": record.batch_id,
        "batch_archival_id": record.archival_id, "batch_size": size or len(record.members),
        "seda_version": settings.seda_version,
        **({"reply_problems": record.reply_problems} if record.reply_problems else {})})


async def _register(ctx: StepContext, options: ArchiveOptions,
                    settings: TenantArchiveSettings) -> dict[str, Any]:
    assert options.batch is not None
    env = ctx.task.envelope
    found, value = mapping.field_value(options.batch.key, env, ctx.tenant)
    if not found or value in (None, ""):
        raise StepError(f"batch archiving needs {options.batch.key}",
                        field=options.batch.key.replace("meta.", "metadata.", 1))
    # the unit must be describable before the document joins a batch
    mapping.document_unit(env, ctx.tenant, options, settings, [])
    events = await _journal(ctx)
    journal = await _journal_file(ctx, events)
    group = batch.group_of(env.tenant, env.flow, ctx.step.name, str(value))
    artefacts = _earlier_artefacts(ctx, options, events)
    files = archived_files(ctx)
    member = BatchMembership(doc_id=env.id, group=group, key=str(value), step=ctx.step.name,
                             envelope=env, files=files, journal=journal, artefacts=artefacts,
                             bytes=sum(f.size for f in [*files, journal, *artefacts]))
    await batch.publish_membership(ctx.runtime, member)
    return {"group": group, "registered_at": time.time()}


def _member_poll(sae: AsalaeClient, progress: dict[str, Any]) -> float:
    """The batcher wakes members when their batch has its outcome, so a member's own
    polls (30 s, then doubling up to the step's ``wait.max_poll_seconds``) only matter if
    that wake was lost. They read the batch record, not the SAE: the connector's
    ``max_poll_seconds`` (how often the batcher asks the SAE) does not bound them."""
    waited = time.time() - progress.get("registered_at", time.time())
    return max(sae.poll_seconds, MEMBER_POLL_S, waited)

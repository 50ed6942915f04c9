"""Step ``payslip-ensap``: deposit a pay slip on ENSAP inside a batch (lot) of its payroll run.

Each pay slip knows its lot from ingestion (``ensap_batch``: id, index, size; a
lone pay slip is a lot of one). Every member writes its entry (encrypted) under
the lot's prefix in the object store; member 0 is the lot's leader: when every
member is there, or no member joined for ``batch_wait_seconds`` (or
``batch_max_wait_seconds`` after it first looked), it builds the
envelope, packages, encrypts and sends the lot. Every member completes once
ENSAP's receipt of the lot lists it. The leader keeps the lot's outcome (ENSAP's
receipt, or its refusal) under the lot's prefix and wakes the other members, which
then finish at once; their own polls, slowing down, read that record rather than
asking ENSAP, and only matter if a wake was lost. The leader counts members from one
listing of the lot's prefix and reads their pointers only to send. ENSAP is always
asked before sending, so a redelivered or retried task never sends a lot twice. A
member the leader left out (it came late) sends a lot of its own, ``<lot>-r<index>``.
A lot ENSAP refuses ends every member with ENSAP's reason.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from bus.wake import wake
from connectors.ensap.client import EnsapClient
from connectors.ensap.envelope import EnsapEntry, build_envelope
from connectors.errors import BusinessRefusal
from schemas.envelope import FileRef
from schemas.payslip import EnsapBatch, PayslipMetadata
from workers.payroll.common import payslip_metadata, payslip_pdf
from workers.step import StepContext, StepError, StepResultData, Waiting, step

KIND = "payslip-ensap"
DEFAULT_WAIT = 30.0  # seconds without a new member after which the leader sends
DEFAULT_MAX_WAIT = 3600.0  # the leader sends at the latest this long after it first looked
MAX_POLL = 30.0  # the leader polls ever less often while its lot fills (waited / 3)
MEMBER_POLL = 30.0  # the others are woken by the leader: their own polls are a fallback
DEFAULT_ORPHAN = 600.0  # seconds a member waits for a leader that never came


@step("payslip-ensap")
async def run(ctx: StepContext) -> StepResultData | Waiting:
    env = ctx.task.envelope
    meta = payslip_metadata(ctx)
    batch = meta.ensap_batch or EnsapBatch(id=env.id, index=0, size=1)
    lot = f"{env.tenant}-{batch.id}"
    client: EnsapClient = ctx.connector()
    progress = dict(ctx.task.progress)
    queued = bool(progress.get("queued"))
    outcome = await asyncio.to_thread(ctx.runtime.store.get_json, _outcome_key(ctx, lot))
    if outcome is not None and outcome["status"] == "refused" and batch.index != 0:
        raise BusinessRefusal(outcome["reason"], partner="ensap")  # the lot the leader sent
    receipt = outcome.get("receipt") if outcome else None
    if receipt is None and not queued:  # first look: ENSAP may have the lot already
        receipt = await client.lookup(lot)
    if receipt is not None and _lists(receipt, env.id):
        return await _done(ctx, lot, receipt)
    if receipt is not None or progress.get("solo"):  # left out of the lot: a lot of its own
        return await _send_alone(ctx, client, f"{lot}-r{batch.index}", meta)
    if not queued:
        await _enqueue(ctx, lot, batch, meta)
    since = float(progress.get("since", time.time()))
    waited = time.time() - since
    options = ctx.step.options
    if batch.index == 0:
        joined = await asyncio.to_thread(_joined, ctx, lot)
        idle = time.time() - max(joined.values(), default=since)
        if len(joined) >= batch.size or idle >= float(options.get(
                "batch_wait_seconds", DEFAULT_WAIT)) or waited >= float(options.get(
                "batch_max_wait_seconds", DEFAULT_MAX_WAIT)):
            receipt = await _send(ctx, client, lot)
            if _lists(receipt, env.id):
                return await _done(ctx, lot, receipt)
    elif waited >= float(options.get("orphan_after_seconds", DEFAULT_ORPHAN)) \
            and not await asyncio.to_thread(_leader_present, ctx, lot):
        await asyncio.to_thread(_mark_solo, ctx, lot, batch)
        return await _send_alone(ctx, client, f"{lot}-r{batch.index}", meta)
    # the leader looks ever less often while the lot fills; the others are woken by it
    # and poll (the lot's outcome record, not ENSAP) only in case the wake was lost
    slowing = waited / 3 if batch.index == 0 else max(waited, float(options.get(
        "member_poll_seconds", MEMBER_POLL)))
    poll = max(float(options.get("poll_seconds", 1.0)), min(slowing, MAX_POLL))
    return Waiting(poll_after=poll,
                   progress={"lot": lot, "since": since, "queued": True},
                   note=f"pay slip {batch.index + 1}/{batch.size} of ENSAP lot {lot}")


def _lists(receipt: dict[str, Any], doc_id: str) -> bool:
    return receipt.get("status") == "accepted" and any(
        e.get("reference_emetteur") == doc_id for e in receipt.get("entries", []))


async def _done(ctx: StepContext, lot: str, receipt: dict[str, Any]) -> StepResultData:
    env = ctx.task.envelope
    order = next(e["numero_ordre"] for e in receipt["entries"]
                 if e["reference_emetteur"] == env.id)
    mine = {"lot": lot, "status": receipt["status"], "numero_ordre": order,
            "received_at": receipt.get("received_at"), "entries": len(receipt["entries"])}
    await ctx.keep(json.dumps(mine, indent=2).encode(), name="ensap-receipt.json",
                   kind="partner-reply", media_type="application/json")
    return StepResultData(output={"lot": lot, "numero_ordre": order,
                                  "lot_size": len(receipt["entries"]),
                                  "received_at": receipt.get("received_at")})


async def _entry(ctx: StepContext, meta: PayslipMetadata) -> tuple[EnsapEntry, FileRef]:
    pdf = await payslip_pdf(ctx)
    if len(meta.matricule) > 10:
        raise StepError("ENSAP numero_dossier takes at most 10 characters: matricule is "
                        f"{len(meta.matricule)} long", field="metadata.matricule")
    assert meta.nir is not None and meta.birth_date is not None  # the model requires them
    entry = EnsapEntry(
        doc_id=ctx.task.envelope.id, matricule=meta.matricule, nir=meta.nir,
        birth_name=meta.birth_name or meta.agent_name, birth_date=meta.birth_date,
        employer_siret=meta.employer_siret, period_start=meta.period_start,
        net_amount_cents=int(meta.net_amount * 100), pdf_sha256=pdf.sha256, pdf_size=pdf.size)
    return entry, pdf


def _prefix(ctx: StepContext, lot: str) -> str:
    return f"ensap/{ctx.tenant.siren}/{lot}/"


async def _enqueue(ctx: StepContext, lot: str, batch: EnsapBatch, meta: PayslipMetadata
                   ) -> None:
    """Write this member's entry (encrypted: it holds the NIR) and its pointer; idempotent."""
    key = f"{_prefix(ctx, lot)}{batch.index:06d}.json"
    store = ctx.runtime.store
    if await asyncio.to_thread(store.get_json, key) is not None:
        return
    entry, pdf = await _entry(ctx, meta)
    body = json.dumps({"entry": _entry_json(entry), "pdf": pdf.model_dump(mode="json")}).encode()
    ref = await asyncio.to_thread(store.put_bytes, ctx.tenant.siren, body,
                                  name="ensap-entry.json", media_type="application/json",
                                  encrypt=True)
    await asyncio.to_thread(store.put_json, key, {"doc_id": ctx.task.envelope.id,
                                                  "index": batch.index, "at": time.time(),
                                                  "entry": ref.model_dump(mode="json")})


def _entry_json(entry: EnsapEntry) -> dict[str, Any]:
    return {"doc_id": entry.doc_id, "matricule": entry.matricule, "nir": entry.nir,
            "birth_name": entry.birth_name, "birth_date": entry.birth_date.isoformat(),
            "employer_siret": entry.employer_siret,
            "period_start": entry.period_start.isoformat(),
            "net_amount_cents": entry.net_amount_cents, "pdf_sha256": entry.pdf_sha256,
            "pdf_size": entry.pdf_size}


def _joined(ctx: StepContext, lot: str) -> dict[str, float]:
    """Members' pointers in the lot's prefix and when each was written (one listing)."""
    return {k: at for k, at in ctx.runtime.store.list_times(_prefix(ctx, lot)).items()
            if k.rsplit("/", 1)[-1][:6].isdigit() and k.endswith(".json")}


def _members(ctx: StepContext, lot: str) -> list[dict[str, Any]]:
    """The pointers of the lot's members (those sending a lot of their own left out)."""
    pointers = [ctx.runtime.store.get_json(k) for k in _joined(ctx, lot)]
    return sorted((p for p in pointers if p and not p.get("solo")), key=lambda p: p["index"])


def _leader_present(ctx: StepContext, lot: str) -> bool:
    return ctx.runtime.store.get_json(f"{_prefix(ctx, lot)}{0:06d}.json") is not None


def _mark_solo(ctx: StepContext, lot: str, batch: EnsapBatch) -> None:
    key = f"{_prefix(ctx, lot)}{batch.index:06d}.json"
    pointer = ctx.runtime.store.get_json(key) or {"doc_id": ctx.task.envelope.id,
                                                  "index": batch.index}
    ctx.runtime.store.put_json(key, pointer | {"solo": True})


def _load(ctx: StepContext, pointer: dict[str, Any]) -> tuple[EnsapEntry, FileRef]:
    raw = json.loads(ctx.runtime.store.read_file(ctx.tenant.siren,
                                                 FileRef.model_validate(pointer["entry"])))
    e = raw["entry"]
    from datetime import date

    entry = EnsapEntry(**(e | {"birth_date": date.fromisoformat(e["birth_date"]),
                               "period_start": date.fromisoformat(e["period_start"])}))
    return entry, FileRef.model_validate(raw["pdf"])


async def _send(ctx: StepContext, client: EnsapClient, lot: str) -> dict[str, Any]:
    """Send the lot (ENSAP asked first), record its outcome, wake the other members."""
    members = await asyncio.to_thread(_members, ctx, lot)
    receipt = await client.lookup(lot)
    if receipt is None:
        loaded = await asyncio.gather(*(asyncio.to_thread(_load, ctx, p) for p in members))
        try:
            receipt = await _deposit(ctx, client, lot, list(loaded))
        except BusinessRefusal as exc:
            await _record_outcome(ctx, lot, members, {"status": "refused", "reason": str(exc)})
            raise
    await _record_outcome(ctx, lot, members, {"status": "accepted", "receipt": receipt})
    return receipt


async def _record_outcome(ctx: StepContext, lot: str, members: list[dict[str, Any]],
                          outcome: dict[str, Any]) -> None:
    """Keep the lot's outcome where members look for it, then wake them."""
    await asyncio.to_thread(ctx.runtime.store.put_json, _outcome_key(ctx, lot), outcome)
    others = [m["doc_id"] for m in members if m["doc_id"] != ctx.task.envelope.id]
    await wake(ctx.runtime, others, ctx.step.name,
               f"ENSAP lot {lot}: {outcome['status']}")


def _outcome_key(ctx: StepContext, lot: str) -> str:
    return f"{_prefix(ctx, lot)}outcome"


async def _send_alone(ctx: StepContext, client: EnsapClient, lot: str,
                      meta: PayslipMetadata) -> StepResultData | Waiting:
    receipt = await client.lookup(lot)
    if receipt is None:
        receipt = await _deposit(ctx, client, lot, [await _entry(ctx, meta)])
    if not _lists(receipt, ctx.task.envelope.id):
        raise StepError(f"ENSAP receipt of lot {lot} does not list this pay slip",
                        field="ensap")
    return await _done(ctx, lot, receipt)


async def _deposit(ctx: StepContext, client: EnsapClient, lot: str,
                   loaded: list[tuple[EnsapEntry, FileRef]]) -> dict[str, Any]:
    """Build, keep (encrypted artefact) and send the lot's envelope with its PDFs."""
    entries = [e for e, _ in loaded]
    xml = build_envelope(client.emitter, entries)
    await ctx.keep(xml, name=f"ensap-envelope-{lot}.xml", kind="generated",
                   media_type="application/xml")
    store, tenant = ctx.runtime.store, ctx.tenant.siren
    pdfs = [(e.file_name, store.iter_file(tenant, ref)) for e, ref in loaded]
    return await client.deposit(lot, xml, pdfs)

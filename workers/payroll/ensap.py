"""Step ``payslip-ensap``: deposit a pay slip on ENSAP inside a batch (lot) of its payroll run.

Each pay slip knows its lot from ingestion (``ensap_batch``: id, index, size; a
lone pay slip is a lot of one). Every member stores its entry (encrypted: it holds
the NIR) and marks it under the lot's prefix with an empty-bodied marker whose name
says the member's index and the entry's digest and size; member 0 is the lot's leader:
when every member is there, or no member joined for ``batch_wait_seconds`` (or
``batch_max_wait_seconds`` after it first looked), it builds the envelope, packages,
encrypts and sends the lot. Every member completes once ENSAP's receipt of the lot
lists it. The leader keeps the lot's outcome (ENSAP's receipt, or its refusal) under
the lot's prefix and wakes the other members with their line of it, so they finish
at once without reading anything; their own polls, slowing down, read the outcome
record rather than asking ENSAP, and only matter if a wake was lost. The leader
learns the members from one listing of the lot's prefix and reads their entries
only to send. ENSAP is always asked before sending, so a redelivered or retried task
never sends a lot twice. A member the leader left out (it came late) sends a lot of
its own, ``<lot>-r<index>``. A lot ENSAP refuses ends every member with its reason.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import date
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
ENTRY_NAME = "ensap-entry.json"
MARKER = ".entry"  # a member's marker: <index>.<entry sha256>.<entry size>.entry
SOLO = ".solo"  # a member sending a lot of its own: <index>.solo
EMPTY = "application/octet-stream"  # markers say everything in their names
_MARKER = re.compile(r"(\d{6})\.([0-9a-f]{64})\.(\d+)\.entry")


@step("payslip-ensap")
async def run(ctx: StepContext) -> StepResultData | Waiting:
    env = ctx.task.envelope
    meta = payslip_metadata(ctx)
    batch = meta.ensap_batch or EnsapBatch(id=env.id, index=0, size=1)
    lot = f"{env.tenant}-{batch.id}"
    client: EnsapClient = ctx.connector()
    progress = dict(ctx.task.progress)
    queued = bool(progress.get("queued"))
    # told by the leader's wake, else (a poll: the wake was lost) read from its record
    outcome = progress.get("outcome") or (await asyncio.to_thread(
        ctx.runtime.store.get_json, _outcome_key(ctx, lot)) if queued else None)
    if outcome is not None and outcome["status"] == "refused" and batch.index != 0:
        raise BusinessRefusal(outcome["reason"], partner="ensap")  # the lot the leader sent
    if outcome is not None and outcome.get("numero_ordre"):
        return _done(outcome)
    receipt = outcome.get("receipt") if outcome else None
    if receipt is None and not queued:  # first look: ENSAP may have the lot already
        receipt = await client.lookup(lot)
    if receipt is not None and _lists(receipt, env.id):
        return _done(_line(lot, receipt, env.id))
    if receipt is not None or progress.get("solo"):  # left out of the lot: a lot of its own
        return await _send_alone(ctx, client, f"{lot}-r{batch.index}", meta)
    if not queued:
        await _enqueue(ctx, lot, batch, meta)
    since = float(progress.get("since", time.time()))
    waited = time.time() - since
    options = ctx.step.options
    if batch.index == 0:
        listing = await asyncio.to_thread(ctx.runtime.store.list_times, _prefix(ctx, lot))
        joined = _joined(listing)
        idle = time.time() - max(joined.values(), default=since)
        if len(joined) >= batch.size or idle >= float(options.get(
                "batch_wait_seconds", DEFAULT_WAIT)) or waited >= float(options.get(
                "batch_max_wait_seconds", DEFAULT_MAX_WAIT)):
            receipt = await _send(ctx, client, lot, listing)
            if _lists(receipt, env.id):
                return _done(_line(lot, receipt, env.id))
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


def _line(lot: str, receipt: dict[str, Any], doc_id: str) -> dict[str, Any]:
    """A member's line of an accepted lot's receipt: what its step's output says."""
    order = next(e["numero_ordre"] for e in receipt["entries"]
                 if e["reference_emetteur"] == doc_id)
    return {"status": "accepted", "lot": lot, "numero_ordre": order,
            "lot_size": len(receipt["entries"]), "received_at": receipt.get("received_at")}


def _done(line: dict[str, Any]) -> StepResultData:
    return StepResultData(output={k: line.get(k) for k in
                                  ("lot", "numero_ordre", "lot_size", "received_at")})


async def _entry(ctx: StepContext, meta: PayslipMetadata) -> tuple[EnsapEntry, FileRef]:
    pdf = await payslip_pdf(ctx)
    if len(meta.matricule) > 10:
        raise StepError("ENSAP numero_dossier takes at most 10 characters: matricule is "
                        f"{len(meta.matricule)} long", field="metadata.matricule")
    # the model requires them for this channel
    assert meta.nir is not None and meta.birth_date is not None and meta.net_amount is not None
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
    """Store this member's entry (encrypted) and its marker; written again when the task
    is redelivered: the entry is the same bytes, so the marker has the same name."""
    entry, pdf = await _entry(ctx, meta)
    body = json.dumps({"entry": _entry_json(entry), "pdf": pdf.model_dump(mode="json")},
                      sort_keys=True).encode()
    store = ctx.runtime.store
    ref = await asyncio.to_thread(store.put_bytes, ctx.tenant.siren, body,
                                  name=ENTRY_NAME, media_type="application/json",
                                  encrypt=True)
    marker = f"{_prefix(ctx, lot)}{batch.index:06d}.{ref.sha256}.{ref.size}{MARKER}"
    await asyncio.to_thread(store.put_record, marker, b"", content_type=EMPTY)


def _entry_json(entry: EnsapEntry) -> dict[str, Any]:
    return {"doc_id": entry.doc_id, "matricule": entry.matricule, "nir": entry.nir,
            "birth_name": entry.birth_name, "birth_date": entry.birth_date.isoformat(),
            "employer_siret": entry.employer_siret,
            "period_start": entry.period_start.isoformat(),
            "net_amount_cents": entry.net_amount_cents, "pdf_sha256": entry.pdf_sha256,
            "pdf_size": entry.pdf_size}


def _markers(listing: dict[str, float]) -> dict[str, tuple[re.Match[str], float]]:
    """Members' markers in a listing of the lot's prefix: each parsed, and when written."""
    return {k: (m, at) for k, at in listing.items()
            if (m := _MARKER.fullmatch(k.rsplit("/", 1)[-1])) is not None}


def _joined(listing: dict[str, float]) -> dict[str, float]:
    """Members' markers in a listing of the lot's prefix and when each was written."""
    return {k: at for k, (_, at) in _markers(listing).items()}


def _entries(listing: dict[str, float]) -> list[FileRef]:
    """The entries of the lot's members in index order (those sending alone left out)."""
    solo = {k.rsplit("/", 1)[-1][:6] for k in listing if k.endswith(SOLO)}
    found = {m[1]: FileRef(sha256=m[2], size=int(m[3]), name=ENTRY_NAME,
                           media_type="application/json")
             for m, _ in _markers(listing).values() if m[1] not in solo}
    return [found[i] for i in sorted(found)]


def _leader_present(ctx: StepContext, lot: str) -> bool:
    return bool(ctx.runtime.store.list_times(f"{_prefix(ctx, lot)}{0:06d}."))


def _mark_solo(ctx: StepContext, lot: str, batch: EnsapBatch) -> None:
    ctx.runtime.store.put_record(f"{_prefix(ctx, lot)}{batch.index:06d}{SOLO}", b"",
                                 content_type=EMPTY)


def _load(ctx: StepContext, ref: FileRef) -> tuple[EnsapEntry, FileRef]:
    raw = json.loads(ctx.runtime.store.read_file(ctx.tenant.siren, ref))
    e = raw["entry"]
    entry = EnsapEntry(**(e | {"birth_date": date.fromisoformat(e["birth_date"]),
                               "period_start": date.fromisoformat(e["period_start"])}))
    return entry, FileRef.model_validate(raw["pdf"])


async def _send(ctx: StepContext, client: EnsapClient, lot: str,
                listing: dict[str, float]) -> dict[str, Any]:
    """Send the lot (ENSAP asked first), record its outcome, wake the other members."""
    receipt = await client.lookup(lot)
    if receipt is None:
        loaded = await asyncio.gather(*(asyncio.to_thread(_load, ctx, ref)
                                        for ref in _entries(listing)))
        try:
            receipt = await _deposit(ctx, client, lot, list(loaded))
        except BusinessRefusal as exc:
            refused = {"status": "refused", "reason": str(exc)}
            await _record_outcome(ctx, lot, refused, {e.doc_id: refused for e, _ in loaded})
            raise
        await ctx.keep(json.dumps(receipt, indent=2).encode(), name=f"ensap-receipt-{lot}.json",
                       kind="partner-reply", media_type="application/json")
    lines = {e["reference_emetteur"]: _line(lot, receipt, e["reference_emetteur"])
             for e in receipt.get("entries", [])}
    await _record_outcome(ctx, lot, {"status": "accepted", "receipt": receipt}, lines)
    return receipt


async def _record_outcome(ctx: StepContext, lot: str, outcome: dict[str, Any],
                          lines: dict[str, dict[str, Any]]) -> None:
    """Keep the lot's outcome where members look for it, then wake each with its line."""
    await asyncio.to_thread(ctx.runtime.store.put_json, _outcome_key(ctx, lot), outcome)
    others = {d: {"outcome": line} for d, line in lines.items() if d != ctx.task.envelope.id}
    await wake(ctx.runtime, list(others), ctx.step.name,
               f"ENSAP lot {lot}: {outcome['status']}", progress=others)


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
    return _done(_line(lot, receipt, ctx.task.envelope.id))


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

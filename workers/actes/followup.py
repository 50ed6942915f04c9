"""Steps of flow ``acte-followup``: cancel an acknowledged acte, or answer a prefecture
letter about it, then wait for the prefecture's acknowledgement.

One step kind (``acte-followup``) for both steps: its ``options.phase`` is ``send`` or
``acknowledgement``. Sending asks S²LOW first whether the cancellation or answer is
already there.
"""

from __future__ import annotations

import asyncio

from bus.intake import SubmissionError
from connectors.errors import BusinessRefusal, PermanentError
from connectors.s2low import actes as A
from connectors.s2low.client import ActesStatus, S2lowClient, TransactionType
from schemas.envelope import utcnow
from workers.actes.acknowledgement import PENDING, poll_seconds, transaction_of
from workers.actes.acte import acte_metadata, followup_metadata, official_id, transaction_id
from workers.actes.checks import load_acte, pick_letter
from workers.step import StepContext, StepError, StepResultData, Waiting, step

KIND = "acte-followup"
ANSWER_STATUSES = (1, 2, 3, ActesStatus.LETTER_ANSWER_ACK, -1)


@step("acte-followup")
async def run(ctx: StepContext) -> StepResultData | Waiting:
    phase = ctx.step.options.get("phase", "send")
    return await (_send(ctx) if phase == "send" else _acknowledgement(ctx))


async def _send(ctx: StepContext) -> StepResultData:
    env = ctx.task.envelope
    meta = followup_metadata(env)
    try:
        acte = await load_acte(ctx.runtime, env.tenant, meta.acte_document)
        letter = pick_letter(acte, meta.letter_id) if meta.action == "answer" else None
    except SubmissionError as exc:
        raise StepError(str(exc), field=exc.field) from None
    official, acte_tid = official_id(acte), transaction_id(acte)
    if official is None or acte_tid is None or acte.envelope is None:
        raise StepError(f"acte {meta.acte_document} is not acknowledged",
                        field="metadata.acte_document")
    number = acte_metadata(acte.envelope)
    client: S2lowClient = ctx.connector()
    out = {"action": meta.action, "acte_document": acte.doc_id, "official_id": official,
           "acte_transaction_id": acte_tid}
    if letter is None:
        await ctx.keep(A.build_annulation(official), kind="generated",
                       name=A.message_file_name(official, A.MSG_ANNULATION, 0, "xml"),
                       media_type="application/xml")
        tid, created = await _cancel_once(client, acte_tid, number.number, number.decision_date)
    else:
        out |= {"letter_id": letter["id"], "letter_kind": letter["kind"]}
        tid, created = await _answer_once(ctx, client, letter, number.number)
    return StepResultData(output=out | {"transaction_id": tid, "already_sent": not created,
                                        "sent_at": utcnow().isoformat()})


async def _cancel_once(client: S2lowClient, acte_tid: int, number: str, decision_date
                       ) -> tuple[int, bool]:
    async def existing() -> int | None:
        ref = await client.find_transaction(number, decision_date,
                                            kind=TransactionType.ANNULATION)
        return ref.id if ref else None

    if (tid := await existing()) is not None:
        return tid, False
    try:
        return await client.cancel(acte_tid), True
    except PermanentError:
        if (tid := await existing()) is not None:  # our earlier request, answer lost
            return tid, False
        raise


async def _answer_once(ctx: StepContext, client: S2lowClient, letter: dict, number: str
                       ) -> tuple[int, bool]:
    meta = followup_metadata(ctx.task.envelope)
    earlier = [r for r in await client.list_transactions(
        number, kind=int(letter["type"]), statuses=ANSWER_STATUSES) if r.id > letter["id"]]
    if earlier:
        return earlier[0].id, False
    files = ctx.task.envelope.files
    data = await asyncio.gather(*(ctx.read_file(ref) for ref in files))
    tid = await client.reply_to_prefecture(
        int(letter["id"]), data[0], refuse=meta.refuse, typology=meta.typology,
        pdf_name=files[0].name,
        annexes=[(ref.name, d, "99_AU") for ref, d in zip(files[1:], data[1:], strict=True)])
    return tid, True


async def _acknowledgement(ctx: StepContext) -> StepResultData | Waiting:
    tid = transaction_of(ctx)
    sent = next(o for o in ctx.task.outputs.values() if o.get("action"))
    client: S2lowClient = ctx.connector()
    status = await client.get_status(tid)
    reply = status.reply
    if isinstance(reply, A.ARAnnulation | A.ARReponse) and status.flux:
        message = A.MSG_ARANNULATION if isinstance(reply, A.ARAnnulation) else "ar"
        name = (A.message_file_name(sent["official_id"], message, 0, "xml")
                if message != "ar" else f"{reply.kind}-{tid}.xml")
        await ctx.keep(status.flux, name=name, kind="partner-reply",
                       media_type="application/xml")
        return StepResultData(output={"transaction_id": tid, "acknowledged": True,
                                      "received_at": reply.date_reception.isoformat()})
    simple = sent["action"] == "answer" and sent.get("letter_kind") == "CourrierSimple"
    if simple and status.status == ActesStatus.TRANSMITTED:  # no AR for a simple letter
        return StepResultData(output={"transaction_id": tid, "acknowledged": False,
                                      "transmitted_at": utcnow().isoformat()})
    if status.status in PENDING:
        return Waiting(poll_after=poll_seconds(ctx), progress={"status": status.status},
                       note=f"S²LOW transaction {tid}: status {status.status}")
    status.raise_for_refusal()
    raise BusinessRefusal(f"S²LOW transaction {tid}: status {status.status} "
                          f"{status.message}".strip(), partner="s2low")

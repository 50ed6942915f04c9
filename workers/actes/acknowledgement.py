"""Step ``acte-acknowledgement``: wait for the prefecture's answer to a transmitted acte.

Polls the S²LOW status through delay topics (``Waiting``); 17 (waiting to be posted in
S²LOW) and 18 (waiting for a signature) wait too, and with the connector option
``confirm_post`` an acte at 17 is posted (``actes_transac_post_confirm_api.php``).
``ARActe`` ends the step with the official ID; the ARActe XML and the stamped PDF
(``actes_transac_get_files_list.php``, then ``actes_download_file.php?tampon=true``)
are kept. A status past 4 reached by archiving (5, 12-16, 19, 20, 22) is an
acknowledged acte, its ARActe read from ``actes_transac_get_ARActe.php``. An
``AnomalieActe``, an ``AnomalieEnveloppe`` (read even when it breaks its schema) or a
refusal puts the document in error with the prefecture's reason, without retry
(``BusinessRefusal``).
"""

from __future__ import annotations

from connectors.errors import BusinessRefusal, PermanentError
from connectors.s2low import actes as A
from connectors.s2low.client import ARCHIVING, ActesStatus, S2lowClient
from schemas.envelope import utcnow
from workers.step import StepContext, StepError, StepResultData, Waiting, step

KIND = "acte-acknowledgement"
PENDING = (ActesStatus.POSTED, ActesStatus.WAITING_TRANSMISSION, ActesStatus.TRANSMITTED,
           ActesStatus.WAITING_POST, ActesStatus.WAITING_SIGNATURE)
DEFAULT_POLL_SECONDS = 60.0


@step("acte-acknowledgement")
async def run(ctx: StepContext) -> StepResultData | Waiting:
    """One look at the transaction: acknowledged, refused, or not yet."""
    tid = transaction_of(ctx)
    client: S2lowClient = ctx.connector()
    status = await client.get_status(tid)
    if isinstance(status.reply, A.ARActe) and status.flux:
        return await _acknowledged(ctx, client, tid, status.reply, status.flux)
    if status.status in ARCHIVING:  # acknowledged, then archived: the ARActe is kept at 4
        ar, flux = await client.get_aractes(tid)
        return await _acknowledged(ctx, client, tid, ar, flux)
    if status.status == ActesStatus.WAITING_POST and _option(ctx, "confirm_post"):
        await client.confirm_post(tid)  # this account holds the teletransmission right
        status = await client.get_status(tid)
    if status.status in PENDING:
        name = ActesStatus.of(status.status)
        hint = (": waiting to be posted by an S²LOW user with the teletransmission right"
                if status.status == ActesStatus.WAITING_POST else "")
        return Waiting(poll_after=poll_seconds(ctx), progress={"status": status.status},
                       note=f"S²LOW transaction {tid}: status {status.status} "
                            f"({getattr(name, 'name', name)})".lower() + hint)
    if status.flux:  # the prefecture's AnomalieActe: evidence kept with the error
        kind = getattr(status.reply, "kind", "reply")
        await ctx.keep(status.flux, name=f"{kind}-{tid}.xml", kind="partner-reply",
                       media_type="application/xml")
    status.raise_for_refusal()  # AnomalieActe, refused, error: BusinessRefusal
    raise BusinessRefusal(f"S²LOW transaction {tid}: unexpected status {status.status} "
                          f"before any acknowledgement {status.message}".strip(),
                          partner="s2low")


async def _acknowledged(ctx: StepContext, client: S2lowClient, tid: int, ar: A.ARActe,
                        flux: bytes) -> StepResultData:
    await ctx.keep(flux, name=A.message_file_name(ar.id_acte, A.MSG_ARACTE, 0, "xml"),
                   kind="partner-reply", media_type="application/xml")
    stamped = await client.get_stamped(tid)
    if not stamped.startswith(b"%PDF"):
        raise PermanentError(f"S²LOW tampon of {tid} is not a PDF", partner="s2low")
    tampon = await ctx.keep(stamped, name=f"{ar.id_acte}-tampon.pdf", kind="stamped",
                            media_type="application/pdf")
    return StepResultData(output={
        "transaction_id": tid, "official_id": ar.id_acte,
        "stamped_pdf": tampon.file.model_dump(mode="json"),
        "received_at": ar.date_reception.isoformat(), "acknowledged_at": utcnow().isoformat(),
        "classification_date_current": ar.classification_date_current.isoformat()})


def transaction_of(ctx: StepContext) -> int:
    """The S²LOW transaction an earlier step of this document created."""
    for output in ctx.task.outputs.values():
        if output.get("transaction_id") is not None:
            return int(output["transaction_id"])
    raise StepError("no S²LOW transaction recorded by an earlier step", field="transaction_id")


def _option(ctx: StepContext, name: str) -> bool:
    options = ctx.tenant.connectors[ctx.step.connector or "s2low"].options
    return bool(options.get(name, False))


def poll_seconds(ctx: StepContext) -> float:
    """How often to ask S²LOW (connector option ``poll_seconds``)."""
    options = ctx.tenant.connectors[ctx.step.connector or "s2low"].options
    return float(options.get("poll_seconds", DEFAULT_POLL_SECONDS))

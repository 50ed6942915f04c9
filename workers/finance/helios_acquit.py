"""Step ``helios-acquit``: wait for the treasury's ``PES_ACQUIT``, then fetch ``PES_Retour``.

Polls the S²LOW transaction (waiting between polls, ``poll_seconds`` of the tenant's
``s2low`` connector, ``helios_poll_seconds`` if set) until the acquit arrives
(status 4): it is downloaded, checked against the PES_ACQUIT schema and kept; the
``PES_Retour`` files S²LOW holds for this file are kept too, then marked read. A
refused PES (6, negative acquit kept) ends the document ``rejected``; a failed
transmission (-1) ends it in error with S²LOW's message.
"""

from __future__ import annotations

from connectors.errors import BusinessRefusal, PermanentError
from connectors.s2low.helios import HeliosClient, HeliosStatus
from schemas.pes import PesError, read_acquit
from workers.step import StepContext, StepError, StepRejected, StepResultData, Waiting, step

KIND = "helios-acquit"
PENDING = {HeliosStatus.POSTED, HeliosStatus.WAITING_TRANSMISSION, HeliosStatus.TRANSMITTED,
           HeliosStatus.PROCESSING, HeliosStatus.INFO, HeliosStatus.WAITING}


def _poll_seconds(ctx: StepContext) -> float:
    options = ctx.tenant.connectors[ctx.step.connector or "s2low"].options
    return float(options.get("helios_poll_seconds", options.get("poll_seconds", 60)))


@step("helios-acquit")
async def run(ctx: StepContext) -> StepResultData | Waiting:
    helios = HeliosClient(ctx.connector())
    source = ctx.step.options.get("from_step", "transmit")
    tid = (ctx.task.outputs.get(source) or {}).get("transaction_id")
    if not tid:
        raise StepError(f"step {ctx.step.name!r}: step {source!r} gave no S²LOW transaction",
                        field="transaction_id")
    status = await helios.get_status(int(tid))
    if status.status in PENDING:
        return Waiting(poll_after=_poll_seconds(ctx), progress={"status": status.status},
                       note=f"S²LOW PES transaction {tid}: {status.message or status.status}")
    if status.status == HeliosStatus.ACQUIT_RECEIVED:
        return await _acknowledged(ctx, helios, int(tid))
    if status.status == HeliosStatus.REFUSED:
        await _keep_negative_acquit(ctx, helios, int(tid))
        raise StepRejected(f"the treasury refused PES transaction {tid}: "
                           f"{status.message or 'no message'}", partner="s2low")
    raise BusinessRefusal(f"S²LOW PES transaction {tid} ended with status {status.status}: "
                          f"{status.message or 'no message'}", partner="s2low")


async def _acknowledged(ctx: StepContext, helios: HeliosClient, tid: int) -> StepResultData:
    data = await helios.get_acquit(tid)
    try:
        acquit = read_acquit(data)
    except PesError as exc:
        raise PermanentError(f"S²LOW transaction {tid}: {exc}", partner="s2low") from None
    await ctx.keep(data, name=f"PES_ACQUIT_{tid}.xml", kind="partner-reply",
                   media_type="application/xml")
    if not acquit.accepted:
        raise StepRejected(f"PES_ACQUIT of transaction {tid}: not accepted "
                           f"({acquit.elements})", partner="s2low")
    retours = []
    for ref in await helios.list_retours():
        if acquit.file_name and acquit.file_name in ref.name:
            content = await helios.get_retour(ref.id)
            await ctx.keep(content, name=ref.name or f"PES_Retour_{ref.id}.xml",
                           kind="partner-reply", media_type="application/xml")
            await helios.mark_retour_read(ref.id)
            retours.append(ref.name)
    return StepResultData(output={"transaction_id": tid, "acquit": True,
                                  "file_name": acquit.file_name,
                                  "acknowledged": len(acquit.elements), "retours": retours})


async def _keep_negative_acquit(ctx: StepContext, helios: HeliosClient, tid: int) -> None:
    try:
        data = await helios.get_acquit(tid)
    except PermanentError:
        return
    await ctx.keep(data, name=f"PES_ACQUIT_{tid}.xml", kind="partner-reply",
                   media_type="application/xml")

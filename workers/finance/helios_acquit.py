"""Step ``helios-acquit``: wait for the treasury's ``PES_ACQUIT``, then fetch ``PES_Retour``.

Polls the S²LOW transaction (``poll_seconds`` of the tenant's ``s2low`` connector,
``helios_poll_seconds`` if set) through every status S²LOW defines (``HeliosStatus``):
1, 2, 3, 7, 13, 14 wait; 4 (acquitted), 5, 8 (information available) and the archiving
states reached after the acquit (9, 10, 11, 19, 20) fetch the acquit; 6 (refused)
fetches it too and ends the document ``rejected`` with the treasury's error code and
text. The acquit is always kept as an artefact and read even when it breaks its
published schema (Hélios emits such refusals): the schema's message goes in the
output (journaled), or in the error when the file cannot be read at all; so do the
PES_Retour files (kept, their schema messages in ``retour_schema_errors``). -1 (error),
0 (cancelled), 22 (destroyed) end in error with S²LOW's message; 24 (sent, no acquit
expected) completes without acquit.
"""

from __future__ import annotations

from connectors.errors import BusinessRefusal, PermanentError
from connectors.s2low.acquit import AcquitReading, AcquitUnreadable, read_acquit
from connectors.s2low.helios import PENDING, WITH_ACQUIT, HeliosClient, HeliosStatus
from schemas.pes import check_retour
from workers.step import StepContext, StepError, StepRejected, StepResultData, Waiting, step

KIND = "helios-acquit"


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
    if status.status in WITH_ACQUIT:
        return await _with_acquit(ctx, helios, int(tid), status.status)
    if status.status == HeliosStatus.TRANSMIS_SANS_ACK:
        return StepResultData(output={"transaction_id": int(tid), "acquit": False,
                                      "status": status.status, "message": status.message})
    raise BusinessRefusal(f"S²LOW PES transaction {tid} ended with status {status.status}"
                          f" ({getattr(status.code, 'name', 'unknown')}): "
                          f"{status.message or 'no message'}", partner="s2low")


async def _with_acquit(ctx: StepContext, helios: HeliosClient, tid: int,
                       status: int) -> StepResultData:
    data = await helios.get_acquit(tid)
    await ctx.keep(data, name=f"PES_ACQUIT_{tid}.xml", kind="partner-reply",
                   media_type="application/xml")
    try:
        acquit = read_acquit(data)
    except AcquitUnreadable as exc:  # kept above, journaled with the error
        raise PermanentError(f"S²LOW transaction {tid}: {exc}", partner="s2low") from None
    if status == HeliosStatus.REFUSE or not acquit.accepted:
        raise StepRejected(f"the treasury refused PES transaction {tid}: {acquit.reason}"
                           + (f" ({acquit.schema_error})" if acquit.schema_error else ""),
                           partner="s2low")
    retours, retour_errors = await _retours(ctx, helios, acquit)
    return StepResultData(output={"transaction_id": tid, "acquit": True, "status": status,
                                  "file_name": acquit.file_name,
                                  "acknowledged": len(acquit.elements),
                                  "acquit_schema_error": acquit.schema_error,
                                  "retours": retours, "retour_schema_errors": retour_errors})


async def _retours(ctx: StepContext, helios: HeliosClient, acquit: AcquitReading
                   ) -> tuple[list[str], dict[str, str]]:
    """Keep this file's PES_Retour (each, even one failing its schema, whose message is
    returned), then mark it read."""
    retours, errors = [], {}
    for ref in await helios.list_retours():
        if acquit.file_name and acquit.file_name in ref.name:
            content = await helios.get_retour(ref.id)
            name = ref.name or f"PES_Retour_{ref.id}.xml"
            await ctx.keep(content, name=name, kind="partner-reply",
                           media_type="application/xml")
            if (error := check_retour(content)) is not None:
                errors[name] = error
            await helios.mark_retour_read(ref.id)
            retours.append(ref.name)
    return retours, errors

"""Step ``chorus-deposit``: deposit the invoice on Chorus Pro, wait until it is integrated.

First run: ask Chorus Pro whether it already holds this supplier's invoice number,
deposit it (``deposer/flux``) only if not. Then poll the flow's detailed report
(``consulterCRDetaille``) until it is rejected (the document ends ``rejected`` with
the platform's reasons) or integrated; the invoice's Chorus Pro id then comes from
``rechercher/fournisseur`` by the flow number. A flow rejected as a duplicate of the
invoice Chorus Pro already holds (a re-deposit after a lost answer) ends with that
invoice.
"""

from __future__ import annotations

import asyncio
import json

from bus.intake import SubmissionError
from connectors.chorus.client import ChorusClient
from workers.finance.checks import load_invoice
from workers.step import StepContext, StepError, StepRejected, StepResultData, Waiting, step

KIND = "chorus-deposit"


@step("chorus-deposit")
async def run(ctx: StepContext) -> StepResultData | Waiting:
    chorus: ChorusClient = ctx.connector()
    poll = float(ctx.step.options.get("poll_seconds", chorus.poll_seconds))
    progress = dict(ctx.task.progress)
    if "numero_flux" not in progress:
        try:
            data, info = await asyncio.to_thread(load_invoice, ctx.runtime, ctx.task.envelope)
        except SubmissionError as exc:
            raise StepError(str(exc), field=exc.field) from None
        receipt = await chorus.submit_invoice(data, ctx.task.envelope.files[0].name,
                                              info.chorus_syntax, info.number,
                                              info.supplier_id)
        await ctx.keep(_json(receipt.model_dump()), name="chorus-deposit-receipt.json",
                       kind="partner-reply", media_type="application/json")
        progress = {"numero_flux": receipt.numero_flux, "date_depot": receipt.date_depot,
                    "syntax": receipt.syntax, "number": info.number,
                    "supplier_id": info.supplier_id, "created": receipt.created}
        if receipt.invoice_id is not None:  # already on the platform: nothing to wait for
            return _done(progress, receipt.invoice_id)
        return Waiting(poll_after=poll, progress=progress,
                       note=f"flow {receipt.numero_flux} deposited, awaiting integration")
    report, found = await chorus.deposit_outcome(progress["numero_flux"],
                                                 progress.get("number", ""),
                                                 progress.get("supplier_id", ""))
    if found is None and report.rejected:
        await ctx.keep(_json(report.raw), name="chorus-flux-report.json", kind="partner-reply",
                       media_type="application/json")
        raise StepRejected(f"Chorus Pro rejected flow {report.numero_flux} "
                           f"({report.state}): {'; '.join(report.errors) or 'no reason'}",
                           partner="chorus")
    if found is None:
        return Waiting(poll_after=poll, progress=progress,
                       note=f"flow {report.numero_flux}: {report.state}")
    await ctx.keep(_json(report.raw), name="chorus-flux-report.json", kind="partner-reply",
                   media_type="application/json")
    return _done(progress, found.invoice_id)

def _done(progress: dict, invoice_id: int) -> StepResultData:
    return StepResultData(output={**progress, "invoice_id": invoice_id})


def _json(value: dict) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str).encode()

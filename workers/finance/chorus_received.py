"""Step ``chorus-received-status``: tell Chorus Pro what became of a received invoice.

Sets the status of the invoice (``meta.chorus_invoice_id``) with ``traiter/recue``
once it reached the finance application: ``meta.status_after_delivery``, else the
step option ``status``. The history is read first, so a status already set is not
sent again; the new history is kept.
"""

from __future__ import annotations

import json

from connectors.chorus.client import ChorusClient
from workers.step import StepContext, StepResultData, step

KIND = "chorus-received-status"


@step("chorus-received-status")
async def run(ctx: StepContext) -> StepResultData:
    chorus: ChorusClient = ctx.connector()
    meta = ctx.task.envelope.metadata
    status = meta.get("status_after_delivery") or ctx.step.options.get("status",
                                                                       "MISE_EN_PAIEMENT")
    reason = ctx.step.options.get("reason", "")
    history, sent = await chorus.set_received_status(int(meta["chorus_invoice_id"]), status,
                                                     reason)
    data = json.dumps(history.raw, indent=2, ensure_ascii=False, sort_keys=True).encode()
    await ctx.keep(data, name="chorus-status-history.json", kind="partner-reply",
                   media_type="application/json")
    return StepResultData(output={"invoice_id": history.invoice_id, "status": history.status,
                                  "sent": sent})

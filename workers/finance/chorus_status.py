"""Step ``chorus-status``: follow an invoice's Chorus Pro status until its final one.

Polls ``consulter/historique`` (waiting between polls) until the invoice reaches the
final status (``meta.final_status``, else the step option ``final_status``,
``MISE_EN_PAIEMENT`` by default); a rejection (``REJETEE``, ``SUSPENDUE``...) ends
the document ``rejected`` with the recipient's reason. The history is kept either way.
"""

from __future__ import annotations

import json

from connectors.chorus.client import PAID_STATUS, REFUSED_STATUSES, ChorusClient
from workers.step import StepContext, StepError, StepRejected, StepResultData, Waiting, step

KIND = "chorus-status"


def _invoice_id(ctx: StepContext) -> int:
    source = ctx.step.options.get("from_step", "deposit")
    invoice_id = (ctx.task.outputs.get(source) or {}).get("invoice_id") \
        or ctx.task.envelope.metadata.get("chorus_invoice_id")
    if not invoice_id:
        raise StepError(f"step {ctx.step.name!r}: no Chorus Pro invoice id (step {source!r} "
                        "gave none)", field="chorus_invoice_id")
    return int(invoice_id)


@step("chorus-status")
async def run(ctx: StepContext) -> StepResultData | Waiting:
    chorus: ChorusClient = ctx.connector()
    invoice_id = _invoice_id(ctx)
    final = ctx.task.envelope.metadata.get("final_status") or \
        ctx.step.options.get("final_status", PAID_STATUS)
    refused = set(ctx.step.options.get("refused_statuses", REFUSED_STATUSES))
    history = await chorus.history(invoice_id)
    seen = [e.status for e in history.events] or [history.status]
    if history.status in refused:
        await _keep(ctx, history.raw)
        reason = next((e.comment for e in reversed(history.events) if e.comment), "")
        raise StepRejected(f"Chorus Pro invoice {history.number or invoice_id} is "
                           f"{history.status}: {reason or 'no reason given'}", partner="chorus")
    if final not in seen:
        poll = float(ctx.step.options.get("poll_seconds", chorus.poll_seconds))
        return Waiting(poll_after=poll, progress={"status": history.status, "seen": seen},
                       note=f"invoice {history.number or invoice_id}: {history.status}")
    await _keep(ctx, history.raw)
    return StepResultData(output={"invoice_id": invoice_id, "status": history.status,
                                  "final_status": final, "statuses": seen})


async def _keep(ctx: StepContext, raw: dict) -> None:
    data = json.dumps(raw, indent=2, ensure_ascii=False, sort_keys=True).encode()
    await ctx.keep(data, name="chorus-status-history.json", kind="partner-reply",
                   media_type="application/json")

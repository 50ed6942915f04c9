"""Step ``hr-agent-file``: file the signed act (and its acknowledgement) in the agent's file.

The connector (role ``agent-file``: a GED folder or WebDAV tree, rooted at the
tenant's agent files) gets one folder per agent (matricule), one sub-folder per act;
it is asked first, so a retried step never files twice.
"""

from __future__ import annotations

import json

from connectors.deposit import DepositFile, DepositTarget
from schemas.hr import hr_metadata
from workers.common.versions import current_main
from workers.step import StepContext, StepResultData, step

KIND = "hr-agent-file"


@step("hr-agent-file")
async def run(ctx: StepContext) -> StepResultData:
    env = ctx.task.envelope
    meta = hr_metadata(env.flow, env.metadata)
    target: DepositTarget = ctx.connector()
    receipt = await target.lookup(meta.matricule, env.id)
    reused = receipt is not None
    outputs = ctx.task.outputs
    record = {"document_id": env.id, "flow": env.flow, "act_type": meta.act_type,
              "number": meta.number, "decision_date": meta.decision_date.isoformat(),
              "subject": meta.subject, "matricule": meta.matricule,
              "agent_name": meta.agent_name,
              "signers": [s.get("signer") for s in outputs.get("sign", {}).get("signers", [])]
              or [outputs.get("sign", {}).get("signer")],
              "transmitted": bool(outputs.get("transmit", {}).get("transmitted")),
              "acte_id": outputs.get("acknowledgement", {}).get("official_id")}
    if receipt is None:
        signed = current_main(ctx)
        files = [DepositFile(signed.name, ctx.runtime.store.iter_file(env.tenant, signed),
                             signed.sha256)]
        receipt = await target.deposit(meta.matricule, env.id, files, record)
    await ctx.keep(json.dumps(receipt, indent=2, ensure_ascii=False, default=str).encode(),
                   name="agent-file-receipt.json", kind="partner-reply",
                   media_type="application/json")
    return StepResultData(output={"location": receipt["location"], "already_filed": reused})

"""Step ``agent-space``: put the pay slip into the agent's personal space over WebDAV.

One folder per agent (its matricule), one sub-folder per pay slip
(``<period>_<document id>``), the PDF then a ``metadata.json`` without personal
data. The WebDAV connector asks the server first, so a retry never writes twice.
"""

from __future__ import annotations

import json

from connectors.deposit import DepositFile
from connectors.webdav.client import WebdavDeposit
from workers.payroll.common import agent_file_name, payslip_metadata, payslip_pdf
from workers.step import StepContext, StepResultData, step

KIND = "agent-space"


@step("agent-space")
async def run(ctx: StepContext) -> StepResultData:
    env = ctx.task.envelope
    meta = payslip_metadata(ctx)
    pdf = await payslip_pdf(ctx)
    space: WebdavDeposit = ctx.connector()
    folder = [meta.matricule, f"{meta.period}_{env.id}"]
    receipt = await space.lookup_folder(folder)
    reused = receipt is not None
    if receipt is None:
        name = agent_file_name(meta)
        files = [DepositFile(name, ctx.runtime.store.iter_file(env.tenant, pdf), pdf.sha256)]
        receipt = await space.deposit_folder(folder, files, {
            "document_id": env.id, "kind": "bulletin de paie", "period": meta.period,
            "matricule": meta.matricule, "employer_siret": meta.employer_siret,
            "file": name, "sha256": pdf.sha256, "size": pdf.size})
    await ctx.keep(json.dumps(receipt, indent=2, sort_keys=True).encode(),
                   name="agent-space-receipt.json", kind="partner-reply",
                   media_type="application/json")
    return StepResultData(output={"location": receipt["location"],
                                  "already_deposited": reused})

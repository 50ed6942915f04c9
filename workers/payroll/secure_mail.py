"""Step ``secure-mail``: publish the pay slip on the download portal and mail the link.

The step completes once the message is sent; the read receipt (the portal records
the download) is followed by the ``mail-receipt`` step. The portal is asked first
on every run: the file is uploaded once and the message sent once.
"""

from __future__ import annotations

import json

from connectors.securemail.client import SecureMailClient
from workers.payroll.common import agent_file_name, payslip_metadata, payslip_pdf
from workers.step import StepContext, StepResultData, step

KIND = "secure-mail"
SUBJECT = "Votre bulletin de paie {period} est disponible"
TEXT = """Bonjour,

Votre bulletin de paie de la période {period} est disponible au téléchargement :

{link}

Ce lien ne peut servir qu'une fois et expire le {expires}.
Ce message est envoyé automatiquement, merci de ne pas y répondre.
"""


@step("secure-mail")
async def run(ctx: StepContext) -> StepResultData:
    env = ctx.task.envelope
    meta = payslip_metadata(ctx)
    mail: SecureMailClient = ctx.connector()
    key = env.id
    package = await mail.lookup(key)
    if package is None:
        pdf = await payslip_pdf(ctx)
        package = await mail.publish(key, agent_file_name(meta),
                                     ctx.runtime.store.iter_file(env.tenant, pdf), pdf.sha256)
    if package.get("notified_at") is None:
        assert meta.email is not None  # the model requires it for this channel
        await mail.notify(key, meta.email, SUBJECT.format(period=meta.period),
                          TEXT.format(period=meta.period, link=package["link"],
                                      expires=package["expires_at"][:10]))
        package = await mail.lookup(key) or package
    receipt = {k: package.get(k) for k in ("key", "name", "size", "sha256", "expires_at",
                                            "notified_at")}
    await ctx.keep(json.dumps(receipt, indent=2).encode(), name="secure-mail-receipt.json",
                   kind="partner-reply", media_type="application/json")
    return StepResultData(output={"package": key, "expires_at": package["expires_at"],
                                  "notified_at": package.get("notified_at")})

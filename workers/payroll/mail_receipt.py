"""Step ``mail-receipt``: wait for the read receipt of a secure mail (the download).

Completes with ``read: true`` and the download time, or ``read: false`` once
``give_up_after_seconds`` (step option, default 30 days) have passed: an unread
pay slip is a fact to record, not an error.
"""

from __future__ import annotations

import json
import time

from connectors.securemail.client import SecureMailClient
from workers.step import StepContext, StepError, StepResultData, Waiting, step

KIND = "mail-receipt"
DEFAULT_GIVE_UP = 30 * 86400.0


@step("mail-receipt")
async def run(ctx: StepContext) -> StepResultData | Waiting:
    env = ctx.task.envelope
    mail: SecureMailClient = ctx.connector()
    package = await mail.lookup(env.id)
    if package is None:
        raise StepError("no secure-mail package for this document: the mail step did not run",
                        field="secure-mail")
    since = float(ctx.task.progress.get("since", time.time()))
    options = ctx.step.options
    read_at = package.get("downloaded_at")
    waited = time.time() - since
    if read_at is None and waited < float(options.get("give_up_after_seconds", DEFAULT_GIVE_UP)):
        # poll often at first (most mails are read soon), then ever less: elapsed / 10
        poll = max(float(options.get("poll_seconds", 60)), min(waited / 10, 3600.0))
        return Waiting(poll_after=poll, progress={"since": since},
                       note="waiting for the agent to download")
    receipt = {"package": env.id, "read": read_at is not None, "read_at": read_at,
               "notified_at": package.get("notified_at")}
    await ctx.keep(json.dumps(receipt, indent=2).encode(), name="read-receipt.json",
                   kind="receipt", media_type="application/json")
    return StepResultData(output=receipt)

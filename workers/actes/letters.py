"""Step ``acte-letters``: watch an acknowledged acte for prefecture letters.

During the legality-control window (tenant setting ``actes.letter_watch_days``, two
months in law) the step polls S²LOW for letters about the acte: simple letters, requests
for documents, observations, referral to the court. Each new letter's files are kept as
artefacts the moment it arrives and the letter is listed in the step's progress (so it is
journaled and shown by ``demat acte letters ID``); answers go through flow
``acte-followup`` (``demat acte reply``). The step ends when the window closes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from connectors.s2low.client import PrefectureDocument, S2lowClient
from schemas.envelope import utcnow
from workers.actes.acknowledgement import transaction_of
from workers.step import StepContext, StepResultData, Waiting, step

KIND = "acte-letters"
DEFAULT_POLL_SECONDS = 3600.0


@step("acte-letters")
async def run(ctx: StepContext) -> StepResultData | Waiting:
    """Record the letters that arrived since the last look; end with the window."""
    tid = transaction_of(ctx)
    client: S2lowClient = ctx.connector()
    since = ctx.task.progress.get("since") or utcnow().isoformat()
    letters: list[dict[str, Any]] = list(ctx.task.progress.get("letters") or [])
    known = {int(x["id"]) for x in letters}
    for ref in await client.list_prefecture_documents(tid):
        if ref.id not in known:
            doc = await client.get_prefecture_document(ref.id)
            letters.append(await _keep_letter(ctx, ref.type, ref.status, doc))
    days = float((ctx.tenant.settings.get("actes") or {}).get("letter_watch_days", 0))
    if utcnow() >= datetime.fromisoformat(since) + timedelta(days=days):
        return StepResultData(output={"letters": letters, "watched_since": since,
                                      "watched_until": utcnow().isoformat()})
    options = ctx.tenant.connectors[ctx.step.connector or "s2low"].options
    return Waiting(poll_after=float(options.get("letter_poll_seconds", DEFAULT_POLL_SECONDS)),
                   progress={"since": since, "letters": letters},
                   note=f"{len(letters)} prefecture letter(s) so far")


async def _keep_letter(ctx: StepContext, kind: int, status: int, doc: PrefectureDocument
                       ) -> dict[str, Any]:
    msg = doc.message
    for name, data in sorted(doc.files.items()):
        media = "application/xml" if name.endswith(".xml") else None
        await ctx.keep(data, name=name, kind="prefecture-letter", media_type=media)
    on = getattr(msg, "date_courrier", None) or getattr(msg, "date_depot", None)
    text = (getattr(msg, "description", "") or getattr(msg, "motif", "")
            or getattr(msg, "nature_illegalite", ""))
    return {"id": doc.transaction_id, "type": kind, "status": status, "kind": msg.kind,
            "id_acte": msg.id_acte, "date": on.isoformat() if on else None, "text": text,
            "files": sorted(doc.files), "received_at": utcnow().isoformat()}

"""Step ``acte-transmit``: send an acte to the prefecture through S²LOW, exactly once.

The acte is posted field by field to ``actes_transac_create.php`` (S²LOW builds and
sends the ACTES archive itself; ``actes_transac_submit.php`` is deprecated and refused),
after asking S²LOW (``list_actes.php``) whether it already holds the acte number: a
retried or redelivered task never transmits twice. The ACTES archive the same fields
make (``EnveloppeCLMISILL`` + ``Acte`` form + documents named by the convention) is
built first, which checks the metadata and gives the expected official ID, and kept
as ``generated`` artefacts once the acte is transmitted. Connector option
``en_attente``: S²LOW keeps the acte waiting to be posted (status 17).
"""

from __future__ import annotations

import asyncio
import hashlib

from bus.intake import SubmissionError
from connectors.s2low import actes as A
from connectors.s2low.client import S2lowClient
from schemas.envelope import FileRef, utcnow
from workers.actes.acte import acte_files, acte_metadata, actes_settings
from workers.common.versions import current_version
from workers.step import StepContext, StepError, StepResultData, step

KIND = "acte-transmit"


@step("acte-transmit")
async def run(ctx: StepContext) -> StepResultData:
    """Build, keep and transmit the archive; output the transaction and expected ID."""
    env = ctx.task.envelope
    try:
        settings, meta = actes_settings(ctx.tenant), acte_metadata(env)
        main, annexes = acte_files(env, meta)
        main = current_version(ctx, main)  # the signed PDF when a sign step ran
    except SubmissionError as exc:
        raise StepError(str(exc), field=exc.field) from None
    pdf, *annex_data = await asyncio.gather(*(_read(ctx, ref) for ref in [main, *annexes]))
    try:
        archive = A.build_acte_archive(settings, meta, pdf, annex_data, serial=_serial(env.id),
                                       sent_on=env.created_at.date())
    except A.ActesError as exc:
        raise StepError(f"ACTES archive: {exc}", field="metadata") from None
    client: S2lowClient = ctx.connector()
    options = ctx.tenant.connectors[ctx.step.connector or "s2low"].options
    result = await client.submit_acte(meta, pdf, annex_data, pdf_name=main.name,
                                      en_attente=bool(options.get("en_attente", False)))
    files = A.unpack(archive.data)  # kept once transmitted (a failed attempt keeps nothing)
    await ctx.keep(files[archive.envelope_name], name=archive.envelope_name, kind="generated",
                   media_type="application/xml")
    await ctx.keep(files[archive.form_name], name=archive.form_name, kind="generated",
                   media_type="application/xml")
    await ctx.keep(archive.data, name=archive.name, kind="generated",
                   media_type="application/gzip")
    return StepResultData(output={
        "transaction_id": result.transaction_id, "already_transmitted": not result.created,
        "archive": archive.name, "expected_id": archive.official_id,
        "sent_at": utcnow().isoformat()})


def _serial(doc_id: str) -> int:
    """The envelope's serial: stable for a document, so a retry builds the same archive."""
    return int(hashlib.sha256(doc_id.encode()).hexdigest()[:8], 16) % 99_999 + 1


async def _read(ctx: StepContext, ref: FileRef) -> bytes:
    return await ctx.read_file(ref)

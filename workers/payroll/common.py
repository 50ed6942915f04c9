"""Helpers shared by the pay slip delivery steps (ENSAP, agent space, secure mail)."""

from __future__ import annotations

from pydantic import ValidationError

from schemas.envelope import FileRef
from schemas.payslip import PayslipMetadata
from workers.common.signed import signed_or_main
from workers.step import StepContext, StepError


def payslip_metadata(ctx: StepContext) -> PayslipMetadata:
    """The document's pay slip metadata (``StepError`` naming the field if invalid)."""
    try:
        return PayslipMetadata.model_validate(ctx.task.envelope.metadata)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        raise StepError(f"metadata.{where}: {err['msg']}", field=f"metadata.{where}") from None


async def payslip_pdf(ctx: StepContext) -> FileRef:
    """The PDF to deliver: the sealed one if the seal step kept it, else the original."""
    return await signed_or_main(ctx)


def agent_file_name(meta: PayslipMetadata) -> str:
    """File name the agent sees: ``bulletin-YYYY-MM-MATRICULE.pdf`` (no personal data)."""
    return f"bulletin-{meta.period}-{meta.matricule}.pdf"

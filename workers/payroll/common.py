"""Helpers shared by the pay slip delivery steps (ENSAP, agent space, secure mail)."""

from __future__ import annotations

from pydantic import ValidationError

from schemas.envelope import FileRef
from schemas.errors import first_error
from schemas.payslip import PayslipMetadata
from workers.common.versions import current_main
from workers.step import StepContext, StepError


def payslip_metadata(ctx: StepContext) -> PayslipMetadata:
    """The document's pay slip metadata (``StepError`` naming the field if invalid)."""
    try:
        return PayslipMetadata.model_validate(ctx.task.envelope.metadata)
    except ValidationError as exc:
        field, message = first_error(exc, "metadata")
        raise StepError(f"{field}: {message}", field=field) from None


async def payslip_pdf(ctx: StepContext) -> FileRef:
    """The PDF to deliver: the sealed one if the seal step kept it, else the original."""
    return current_main(ctx)


def agent_file_name(meta: PayslipMetadata) -> str:
    """File name the agent sees: ``bulletin-YYYY-MM-MATRICULE.pdf`` (no personal data)."""
    return f"bulletin-{meta.period}-{meta.matricule}.pdf"

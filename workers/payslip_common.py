"""Helpers shared by the pay slip delivery steps (ENSAP, agent space, secure mail)."""

from __future__ import annotations

from pydantic import ValidationError

from schemas.envelope import FileRef, FileRole
from schemas.payslip import PayslipMetadata
from workers.context import StepContext, StepError

SIGNED_KEYS = ("signed_file", "sealed_file", "signed", "file")


def payslip_metadata(ctx: StepContext) -> PayslipMetadata:
    """The document's pay slip metadata (``StepError`` naming the field if invalid)."""
    try:
        return PayslipMetadata.model_validate(ctx.task.envelope.metadata)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        raise StepError(f"metadata.{where}: {err['msg']}", field=f"metadata.{where}") from None


def payslip_pdf(ctx: StepContext) -> FileRef:
    """The PDF to deliver: the sealed one if an earlier step produced it, else the original."""
    for output in reversed(list(ctx.task.outputs.values())):
        for key in SIGNED_KEYS:
            value = output.get(key)
            if isinstance(value, dict) and {"sha256", "size", "name"} <= set(value):
                return FileRef.model_validate(value | {"media_type": value.get(
                    "media_type", "application/pdf")})
    mains = [f for f in ctx.task.envelope.files if f.role == FileRole.MAIN]
    if not mains:
        raise StepError("a pay slip needs a main PDF file", field="files")
    return mains[0]


def agent_file_name(meta: PayslipMetadata) -> str:
    """File name the agent sees: ``bulletin-YYYY-MM-MATRICULE.pdf`` (no personal data)."""
    return f"bulletin-{meta.period}-{meta.matricule}.pdf"

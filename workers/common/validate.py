"""Step ``validate``: files intact in the store, content of the declared kind, metadata valid."""

from __future__ import annotations

import asyncio
import tempfile
from typing import IO

from bus.intake import SubmissionError, check_flow, validate_metadata
from bus.objectstore import IntegrityError, ObjectMissing
from bus.sniff import HEAD_SIZE, sniff
from schemas.envelope import FileRef
from workers.common.pdf_check import pdf_problem
from workers.common.signature_check import check_signed_inputs, wants_content
from workers.step import MAX_IN_MEMORY, StepContext, StepError, StepResultData, step

PDF = "application/pdf"
STRICT_PDF_CONNECTORS = ("s2low", "signature", "seal")  # the prefecture, signatories
SPOOL_IN_MEMORY = 1024 * 1024


@step("validate", chainable=True)
async def run(ctx: StepContext) -> StepResultData:
    """Verify every file's digest and media type, then the flow's own checks."""
    env = ctx.task.envelope
    try:
        validate_metadata(ctx.runtime.flows.get(env.flow).metadata_model, env.metadata)
    except SubmissionError as exc:
        raise StepError(str(exc), field=exc.field) from None
    total, contents = 0, {}
    for i, ref in enumerate(env.files):
        size, data = await asyncio.to_thread(_verify_file, ctx, i, ref)
        total += size
        if data is not None:
            contents[i] = data
    try:
        await check_flow(ctx.runtime, env, at_intake=False)
    except SubmissionError as exc:
        raise StepError(str(exc), field=exc.field) from None
    output = {"files": len(env.files), "bytes": total}
    output.update(await check_signed_inputs(ctx, contents))  # verdict per signature
    return StepResultData(output=output)


def _verify_file(ctx: StepContext, index: int, ref: FileRef) -> tuple[int, bytes | None]:
    """Size of a verified file, and its bytes when the signature check will read them;
    a PDF bound for the prefecture or a signatory is spooled (under the data directory,
    memory stays flat) and must be a real, passive, unencrypted PDF."""
    keep, strict = wants_content(ctx, ref), _strict_pdf(ctx) and ref.media_type == PDF
    if strict and ref.size > MAX_IN_MEMORY:  # signing or the ACTES archive hold it whole
        raise StepError(f"file {ref.name!r} has {ref.size} bytes: a PDF for the prefecture "
                        f"or a signatory has at most {MAX_IN_MEMORY}", field=f"files[{index}]")
    chunks: list[bytes] = []
    with _spool(ctx) as spool:
        head, size = b"", 0
        try:
            for chunk in ctx.runtime.store.iter_file(ctx.tenant.siren, ref):
                head = head or chunk[:HEAD_SIZE]
                size += len(chunk)
                if keep:
                    chunks.append(chunk)
                if strict:
                    spool.write(chunk)
        except (IntegrityError, ObjectMissing) as exc:
            raise StepError(str(exc), field=f"files[{index}]") from None
        sniffed = sniff(head)
        if sniffed != ref.media_type:
            raise StepError(f"file {ref.name!r}: content is {sniffed}, declared "
                            f"{ref.media_type}", field=f"files[{index}].media_type")
        problem = pdf_problem(spool, size) if strict else None
    if problem:
        raise StepError(f"file {ref.name!r}: {problem}", field=f"files[{index}]")
    return size, b"".join(chunks) if keep else None


def _spool(ctx: StepContext) -> IO[bytes]:
    folder = ctx.runtime.settings.var_dir / "tmp"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, dir=folder)


def _strict_pdf(ctx: StepContext) -> bool:
    """Whether this document's PDFs go to the prefecture or a signatory (a step of its
    flow with such a connector applies to it)."""
    env, tenant = ctx.task.envelope, ctx.tenant
    return any(
        (s.connector in STRICT_PDF_CONNECTORS or s.kind == "sign")
        and (s.connector is None or s.connector in tenant.connectors)
        and s.applies(env.metadata, tenant.settings)
        for s in ctx.runtime.flows.get(env.flow).steps)

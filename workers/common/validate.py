"""Step ``validate``: files intact in the store, content of the declared kind, metadata valid."""

from __future__ import annotations

import asyncio

from bus.intake import SubmissionError, check_flow, validate_metadata
from bus.objectstore import IntegrityError, ObjectMissing
from bus.sniff import HEAD_SIZE, sniff
from schemas.envelope import FileRef
from workers.common.signature_check import check_signed_inputs, wants_content
from workers.step import StepContext, StepError, StepResultData, step


@step("validate")
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
    """Size of a verified file, and its bytes when the signature check will read them."""
    head = b""
    size = 0
    keep = wants_content(ctx, ref)
    chunks: list[bytes] = []
    try:
        for chunk in ctx.runtime.store.iter_file(ctx.tenant.siren, ref):
            if not head:
                head = chunk[:HEAD_SIZE]
            size += len(chunk)
            if keep:
                chunks.append(chunk)
    except (IntegrityError, ObjectMissing) as exc:
        raise StepError(str(exc), field=f"files[{index}]") from None
    sniffed = sniff(head)
    if sniffed != ref.media_type:
        raise StepError(f"file {ref.name!r}: content is {sniffed}, declared {ref.media_type}",
                        field=f"files[{index}].media_type")
    return size, b"".join(chunks) if keep else None

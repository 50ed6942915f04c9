"""Step ``validate``: files intact in the store, content of the declared kind, metadata valid."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bus.intake import SubmissionError, check_flow, validate_metadata
from bus.objectstore import IntegrityError, ObjectMissing
from bus.sniff import HEAD_SIZE, sniff
from schemas.envelope import FileRef
from workers.context import StepContext, StepError, StepResultData
from workers.signature_check import check_signed_inputs

KIND = "validate"

FlowCheck = Callable[[StepContext], Awaitable[dict]]
FLOW_CHECKS: dict[str, FlowCheck] = {}


async def run(ctx: StepContext) -> StepResultData:
    """Verify every file's digest and media type, then the flow's own checks."""
    env = ctx.task.envelope
    try:
        validate_metadata(ctx.runtime.flows.get(env.flow).metadata_model, env.metadata)
    except SubmissionError as exc:
        raise StepError(str(exc), field=exc.field) from None
    total = 0
    for i, ref in enumerate(env.files):
        total += await asyncio.to_thread(_verify_file, ctx, i, ref)
    try:
        await check_flow(ctx.runtime, env, at_intake=False)
    except SubmissionError as exc:
        raise StepError(str(exc), field=exc.field) from None
    output = {"files": len(env.files), "bytes": total}
    output.update(await check_signed_inputs(ctx))  # signed inputs: verdict per signature
    check = FLOW_CHECKS.get(env.flow)
    if check is not None:
        output.update(await check(ctx))
    return StepResultData(output=output)


def _verify_file(ctx: StepContext, index: int, ref: FileRef) -> int:
    head = b""
    size = 0
    try:
        for chunk in ctx.runtime.store.iter_file(ctx.tenant.siren, ref):
            if not head:
                head = chunk[:HEAD_SIZE]
            size += len(chunk)
    except (IntegrityError, ObjectMissing) as exc:
        raise StepError(str(exc), field=f"files[{index}]") from None
    sniffed = sniff(head)
    if sniffed != ref.media_type:
        raise StepError(f"file {ref.name!r}: content is {sniffed}, declared {ref.media_type}",
                        field=f"files[{index}].media_type")
    return size

"""Steps ``hr-transmit`` and ``hr-acknowledgement``: an HR act goes to the prefecture only
when its type requires it (``schemas.hr``); then the acte steps do the work, on the
signed PDF: ``acte-transmit`` (ACTES archive through S²LOW, asked first) and
``acte-acknowledgement`` (waits for the ARActe)."""

from __future__ import annotations

from dataclasses import replace

from pydantic import ValidationError

from schemas.errors import first_error
from schemas.hr import hr_metadata
from workers.actes import acknowledgement as acte_acknowledgement
from workers.actes import transmit as acte_transmit
from workers.common.versions import current_main
from workers.hr.checks import as_acte
from workers.step import StepContext, StepError, StepResultData, Waiting, step

KIND = "hr-transmit"


@step("hr-transmit", "hr-acknowledgement")
async def run(ctx: StepContext) -> StepResultData | Waiting:
    env = ctx.task.envelope
    try:
        meta = hr_metadata(env.flow, env.metadata)
    except ValidationError as exc:
        field, message = first_error(exc, "metadata")
        raise StepError(f"{field}: {message}", field=field) from None
    if ctx.task.kind == "hr-acknowledgement":
        if not any(o.get("transmitted") for o in ctx.task.outputs.values()):
            return StepResultData(output={"acknowledged": False, "reason": "not transmitted"})
        task = ctx.task.model_copy(update={"envelope": as_acte(env, meta)})
        return await acte_acknowledgement.run(replace(ctx, task=task))
    if not meta.needs_transmission():
        why = "transmit: false" if meta.transmit is False else \
            f"act type {meta.act_type!r} is not sent for legality control"
        return StepResultData(output={"transmitted": False, "reason": why})
    signed = current_main(ctx)
    acte = as_acte(env, meta).model_copy(update={"files": [signed, *env.files[1:]]})
    task = ctx.task.model_copy(update={"envelope": acte})
    result = await acte_transmit.run(replace(ctx, task=task))  # artefacts list is shared
    return StepResultData(output=result.output | {"transmitted": True,
                                                  "transmitted_file": signed.name})

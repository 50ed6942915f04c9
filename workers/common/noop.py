"""Step ``noop``: does nothing and succeeds (transport benchmarks, flow tests)."""

from __future__ import annotations

from workers.step import StepContext, StepResultData, step

KIND = "noop"


@step("noop", chainable=True)
async def run(ctx: StepContext) -> StepResultData:
    """Succeed at once, with the attempt number as output."""
    return StepResultData(output={"attempt": ctx.task.attempt})

"""The thin FastStream subscriber shared by every step kind.

It decodes a ``StepTask``, calls the kind's plain ``run`` function with a
``StepContext``, and reports ``StepDone`` or ``StepFailed`` to the router.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from typing import Any

from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy

from bus.broker import encode
from bus.deadletter import source_of
from bus.privacy import scrub_for
from bus.runtime import Runtime
from bus.services import decode_or_dead_letter
from connectors.errors import ConnectorError
from schemas.messages import (
    ErrorInfo,
    MessageSource,
    StepDone,
    StepFailed,
    StepTask,
    StepWaiting,
)
from workers import step_module
from workers.context import StepContext, StepError, StepRejected, Waiting

log = logging.getLogger("demat.worker")


def error_info(exc: BaseException) -> ErrorInfo:
    """Classify an exception: connector errors say if they are retryable; bugs are."""
    if isinstance(exc, StepError):
        return ErrorInfo(error_class="StepError", message=str(exc), field=exc.field)
    if isinstance(exc, StepRejected):
        return ErrorInfo(error_class="StepRejected", message=str(exc), business=True)
    if isinstance(exc, ConnectorError):
        return ErrorInfo(error_class=type(exc).__name__, message=str(exc),
                         retryable=exc.retryable)
    if isinstance(exc, TimeoutError):
        return ErrorInfo(error_class="TimeoutError", message=str(exc) or "step timed out",
                         retryable=True)
    return ErrorInfo(error_class=type(exc).__name__, message=str(exc), retryable=True,
                     traceback="".join(traceback.format_exception(exc))[-4000:])


async def execute(runtime: Runtime, task: StepTask, source: MessageSource | None = None
                  ) -> StepDone | StepFailed | StepWaiting:
    """Run one task to its result message (never raises for step failures)."""
    env = task.envelope
    ctx: StepContext | None = None
    try:
        flow = runtime.flows.get(env.flow)
        step = flow.step(task.step)
        ctx = StepContext(runtime, task, runtime.tenants.get(env.tenant), step)
        result = await asyncio.wait_for(step_module(task.kind).run(ctx),
                                        timeout=step.retry.timeout_seconds)
    except Exception as exc:  # every failure becomes a message to the router
        info = ErrorInfo.model_validate(scrub_for(env, runtime.flows, error_info(exc).model_dump()))
        log.warning("step %s of %s failed: %s: %s", task.step, task.doc_id,
                    info.error_class, info.message)
        return StepFailed(doc_id=task.doc_id, task_id=task.task_id, step=task.step, error=info,
                          source=source, artefacts=ctx.artefacts if ctx else [])
    if isinstance(result, Waiting):
        return StepWaiting(doc_id=task.doc_id, task_id=task.task_id, step=task.step,
                           poll_after=result.poll_after, progress=result.progress,
                           note=result.note, artefacts=ctx.artefacts)
    return StepDone(doc_id=task.doc_id, task_id=task.task_id, step=task.step,
                    output=result.output, artefacts=ctx.artefacts)


def register(broker: KafkaBroker, runtime: Runtime, kind: str) -> None:
    """Subscribe the worker of step ``kind`` to its topic."""
    topics = runtime.topics

    @broker.subscriber(topics.step(kind), group_id=topics.step(kind),
                       ack_policy=AckPolicy.NACK_ON_ERROR, auto_offset_reset="earliest",
                       max_workers=runtime.settings.partitions)
    async def handle(body: Any, msg: KafkaMessage) -> None:
        task = await decode_or_dead_letter(broker, runtime, msg, StepTask.model_validate_json)
        if task is None:
            return
        result = await execute(runtime, task, source_of(msg))
        await broker.publish(encode(result), topics.router, key=task.doc_id.encode())

"""Service group ``steps``: runs the step kinds that flow families register.

One consumer serves every kind (group ``<prefix>.steps``, ``bus.consumer``): it decodes
a ``StepTask``, calls the kind's registered handler (``bus.plugins``) with a
``StepCall``, and reports ``StepDone``, ``StepFailed`` or ``StepWaiting`` to the router.
"""

from __future__ import annotations

import asyncio
import logging
import traceback

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker

from bus.broker import encode
from bus.consumer import KeyOrderedConsumer
from bus.deadletter import decode_or_dead_letter, record_source
from bus.privacy import scrub_for
from bus.runtime import Runtime
from bus.steps import StepCall, StepError, StepRejected, Waiting
from connectors.errors import ConnectorError
from schemas.messages import (
    ErrorInfo,
    MessageSource,
    StepDone,
    StepFailed,
    StepTask,
    StepWaiting,
)

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
    call: StepCall | None = None
    try:
        step = runtime.flows.get(env.flow).step(task.step)
        call = StepCall(runtime, task, runtime.tenants.get(env.tenant), step)
        handler = runtime.registry.step(task.kind)
        result = await asyncio.wait_for(handler(call), timeout=step.retry.timeout_seconds)
    except Exception as exc:  # every failure becomes a message to the router
        info = ErrorInfo.model_validate(scrub_for(env, runtime.flows, error_info(exc).model_dump()))
        log.warning("step %s of %s failed: %s: %s", task.step, task.doc_id,
                    info.error_class, info.message)
        return StepFailed(doc_id=task.doc_id, task_id=task.task_id, step=task.step, error=info,
                          source=source, artefacts=call.artefacts if call else [])
    if isinstance(result, Waiting):
        return StepWaiting(doc_id=task.doc_id, task_id=task.task_id, step=task.step,
                           poll_after=result.poll_after, progress=result.progress,
                           note=result.note, artefacts=call.artefacts)
    return StepDone(doc_id=task.doc_id, task_id=task.task_id, step=task.step,
                    output=result.output, artefacts=call.artefacts)


class StepService:
    """Serves step kinds from one consumer (per-document order, many documents at once).

    One group member whatever the number of kinds: one FastStream subscriber per kind
    and partition made dozens of members per process, whose heartbeats expired under
    load and rebalanced the groups over and over.
    """

    def __init__(self, broker: KafkaBroker, runtime: Runtime, kinds: list[str]) -> None:
        self.broker = broker
        self.runtime = runtime
        topics = runtime.topics
        self.consumer = KeyOrderedConsumer(
            runtime.settings.bootstrap, [topics.step(k) for k in kinds],
            group_id=f"{topics.prefix}.steps", handle=self.handle,
            max_in_flight=runtime.settings.step_concurrency, client_id="demat-steps",
            fetch_wait_ms=runtime.settings.fetch_wait_ms, security=runtime.settings.kafka_security)

    async def handle(self, record: ConsumerRecord) -> None:
        """Run one task and report its result to the router."""
        source = record_source(record)
        task = await decode_or_dead_letter(self.broker, self.runtime.topics, record.value,
                                           source, StepTask.model_validate_json)
        if task is None:
            return
        result = await execute(self.runtime, task, source)
        await self.broker.publish(encode(result), self.runtime.topics.router,
                                  key=task.doc_id.encode())

    async def run(self) -> None:
        await self.consumer.run()

    def stop(self) -> None:
        self.consumer.stop()

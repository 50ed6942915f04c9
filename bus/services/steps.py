"""Service group ``steps``: runs the step kinds that flow families register.

One consumer serves every kind (group ``<prefix>.steps``, ``bus.consumer``): it decodes
a ``StepTask``, calls the kind's registered handler (``bus.plugins``) with a
``StepCall``, and reports ``StepDone``, ``StepFailed`` or ``StepWaiting`` to the router.
A task may chain steps after its own (``StepTask.then``): each runs once the one before
succeeded, and their results go to the router together (``StepResults``).
"""

from __future__ import annotations

import asyncio
import logging
import traceback

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker

from bus.broker import encode
from bus.consumer import KeyOrderedConsumer
from bus.deadletter import (
    decode_or_dead_letter,
    failure_info,
    is_transient,
    publish_dead_letter,
    record_letter,
    record_source,
)
from bus.filememo import remembering_files
from bus.privacy import scrub_for
from bus.runtime import Runtime
from bus.steps import StepCall, StepError, StepRejected, Waiting
from connectors.errors import ConnectorError
from schemas.messages import (
    ChainedStep,
    ErrorInfo,
    MessageSource,
    StepDone,
    StepFailed,
    StepResults,
    StepTask,
    StepWaiting,
)

log = logging.getLogger("demat.worker")


def error_info(exc: BaseException) -> ErrorInfo:
    """Classify an exception: connector errors say if they are retryable, infrastructure
    errors are, anything else (a bug, an unforeseen input) is not."""
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
    if is_transient(exc):  # the store or the broker unreachable: worth another attempt
        return ErrorInfo(error_class=type(exc).__name__, message=str(exc), retryable=True,
                         traceback="".join(traceback.format_exception(exc))[-4000:])
    return failure_info(exc)  # a bug or an input nobody expected: the document's failure


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


async def execute_chain(runtime: Runtime, task: StepTask, kinds: set[str],
                        source: MessageSource | None = None
                        ) -> StepDone | StepFailed | StepWaiting | StepResults:
    """Run a task, then the steps chained after it while each succeeds (and its kind is
    one of ``kinds``, the ones this worker serves): one result, or all of them. The
    small files one step reads or writes are read from memory by the next ones."""
    with remembering_files():
        results = [await execute(runtime, task, source)]
        for link in task.then:
            last = results[-1]
            if not isinstance(last, StepDone) or link.kind not in kinds:
                break
            task = chained_task(task, last, link)
            results.append(await execute(runtime, task, source))
    return results[0] if len(results) == 1 else StepResults(doc_id=task.doc_id,
                                                            results=results)


def chained_task(task: StepTask, done: StepDone, link: ChainedStep) -> StepTask:
    """The task of ``link``, run after ``task`` ended ``done``: what the router would have
    sent once it had applied ``done``."""
    return task.model_copy(update={
        "task_id": link.task_id, "step": link.step, "kind": link.kind,
        "attempt": link.attempt, "idempotency_key": link.idempotency_key,
        "progress": link.progress, "outputs": task.outputs | {done.step: done.output},
        "then": [t for t in task.then if t.task_id != link.task_id]})


class StepService:
    """Serves step kinds from one consumer (per-document order, many documents at once).

    One group member whatever the number of kinds: one FastStream subscriber per kind
    and partition made dozens of members per process, whose heartbeats expired under
    load and rebalanced the groups over and over.
    """

    def __init__(self, broker: KafkaBroker, runtime: Runtime, kinds: list[str]) -> None:
        self.broker = broker
        self.runtime = runtime
        self.kinds = set(kinds)
        topics = runtime.topics
        self.consumer = KeyOrderedConsumer(
            runtime.settings.bootstrap, [topics.step(k) for k in kinds],
            group_id=f"{topics.prefix}.steps", handle=self.handle,
            max_in_flight=runtime.settings.step_concurrency, client_id="demat-steps",
            fetch_wait_ms=runtime.settings.fetch_wait_ms, security=runtime.settings.kafka_security,
            on_poison=self.poison)

    async def handle(self, record: ConsumerRecord) -> None:
        """Run one task and report its result to the router."""
        source = record_source(record)
        task = await decode_or_dead_letter(self.broker, self.runtime.topics, record.value,
                                           source, StepTask.model_validate_json)
        if task is None:
            return
        result = await execute_chain(self.runtime, task, self.kinds, source)
        await self.broker.publish(encode(result), self.runtime.topics.router,
                                  key=task.doc_id.encode())

    async def poison(self, record: ConsumerRecord, exc: Exception) -> None:
        """A task whose handling raised outside the step (reporting it...): the step fails
        for good with ``exc`` named; an undecodable one is dead-lettered as it is."""
        try:
            task = StepTask.model_validate_json(record.value)
        except ValueError:
            await publish_dead_letter(self.broker, self.runtime.topics,
                                      record_letter(record, exc))
            return
        info = ErrorInfo.model_validate(scrub_for(task.envelope, self.runtime.flows,
                                                  failure_info(exc).model_dump()))
        failed = StepFailed(doc_id=task.doc_id, task_id=task.task_id, step=task.step,
                            error=info, source=record_source(record))
        await self.broker.publish(encode(failed), self.runtime.topics.router,
                                  key=task.doc_id.encode())

    async def run(self) -> None:
        await self.consumer.run()

    def stop(self) -> None:
        self.consumer.stop()

"""Service group ``router``: the only writer of document state; drives each document
through its flow (``bus.engine``) and publishes the tasks, events and dead letters."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import ConsumerRecord
from aiokafka.abc import ConsumerRebalanceListener
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy
from pydantic import TypeAdapter

from bus.audit.config import key_hasher
from bus.broker import encode, journal_records
from bus.deadletter import (
    decode_or_dead_letter,
    failure_info,
    is_transient,
    letter_headers,
    publish_dead_letter,
    record_source,
)
from bus.delays import delay_headers, tier_for
from bus.engine import FlowEngine, Transition
from bus.runtime import Runtime
from bus.state import StateStore
from schemas.messages import (
    Accepted,
    ConfigurationLoaded,
    DeadLetter,
    DocumentState,
    JournalEvent,
    Refused,
    RouterMessage,
    StepDone,
    StepFailed,
    StepResults,
    StepWaiting,
    TaskDue,
    Wake,
)

_router_message = TypeAdapter(RouterMessage)
BATCH_RECORDS = 500  # the router reads its topic in batches of at most this
BATCH_WAIT_MS = 5  # and waits at most this for a batch when idle
log = logging.getLogger("demat.router")


def _key(doc_id: str) -> bytes:
    return doc_id.encode()


class _ForgetOnRebalance(ConsumerRebalanceListener):
    def __init__(self, states: StateStore) -> None:
        self.states = states

    async def on_partitions_revoked(self, revoked) -> None:
        self.states.forget()

    async def on_partitions_assigned(self, assigned) -> None:
        self.states.forget()


class Router:
    """Applies router messages to document states and emits what follows."""

    def __init__(self, runtime: Runtime, broker: KafkaBroker) -> None:
        self.runtime = runtime
        self.broker = broker
        self.engine = FlowEngine(runtime.flows, runtime.tenants,
                                 key_hasher=key_hasher(runtime.settings),
                                 chainable=frozenset(runtime.registry.chainable))
        self.states = StateStore(runtime.database, runtime.store,
                                 runtime.settings.state_cache_size)

    async def handle_batch(self, records: Sequence[ConsumerRecord]) -> None:
        """Apply a batch; if it fails for another reason than the infrastructure, apply
        its documents one by one, so only the document at fault goes to ``error``."""
        by_doc: dict[str, list[Any]] = {}
        for rec in records:
            decoded = await decode_or_dead_letter(self.broker, self.runtime.topics, rec.value,
                                                  record_source(rec),
                                                  _router_message.validate_json)
            if decoded is not None:
                by_doc.setdefault(decoded.doc_id, []).append(decoded)
        try:
            await self.apply(by_doc)
        except Exception as exc:
            if is_transient(exc):
                raise
            log.warning("router batch failed (%s): applying its documents one by one",
                        type(exc).__name__)
            for doc_id, msgs in by_doc.items():
                await self.apply_alone(doc_id, msgs)

    async def apply_alone(self, doc_id: str, msgs: list[Any]) -> None:
        """Apply one document's messages; an unexpected exception poisons the document."""
        try:
            await self.apply({doc_id: msgs})
        except Exception as exc:
            if is_transient(exc):
                raise
            await self.poison(doc_id, msgs, exc)

    async def poison(self, doc_id: str, msgs: list[Any], exc: Exception) -> None:
        """Put the document in ``error`` with a dead letter naming ``exc`` (only the dead
        letter if its state cannot even be read or failed)."""
        log.error("document %s dead-lettered: the router's %s", doc_id, type(exc).__name__)
        error = failure_info(exc)
        try:
            state = (await self.states.load_many([doc_id])).get(doc_id)
            out = self.engine.on_poison(state, msgs[0], error)
        except Exception as again:
            if is_transient(again):
                raise
            env = getattr(msgs[0], "envelope", None)
            await publish_dead_letter(self.broker, self.runtime.topics, DeadLetter(
                doc_id=doc_id, tenant=env.tenant if env else None,
                flow=env.flow if env else None, error=error))
            return
        await self.publish([out])
        if out.changed:
            await self.states.save_many([out.state])

    async def apply(self, by_doc: dict[str, list[Any]]) -> None:
        """Apply each document's messages in order; the states not held are read in one
        query, those changed written in one transaction.

        Everything is published before any state is saved, so a crash in between
        replays the messages onto the same states (same task ids).
        """
        new = [d for d, msgs in by_doc.items() if all(isinstance(m, Accepted) for m in msgs)]
        found = await self.states.load_many(by_doc, new=set(new))
        outs: list[Transition] = []
        changed: list[DocumentState] = []
        for doc_id, msgs in by_doc.items():
            state = found.get(doc_id)
            dirty = False
            for decoded in msgs:
                out = self.transition(state, decoded)
                outs.append(out)
                if out.changed:
                    state, dirty = out.state, True
            if dirty and state is not None:
                changed.append(state)
        await self.publish(outs)
        await self.states.save_many(changed)

    def transition(self, state: DocumentState | None, msg: RouterMessage) -> Transition:
        engine = self.engine
        match msg:
            case Accepted():
                return engine.on_accepted(state, msg)
            case Refused():
                return engine.on_refused(state, msg)
            case StepDone():
                return engine.on_step_done(state, msg)
            case StepFailed():
                return engine.on_step_failed(state, msg)
            case StepWaiting():
                return engine.on_step_waiting(state, msg)
            case StepResults():
                return engine.on_step_results(state, msg)
            case ConfigurationLoaded():
                return engine.on_configuration(state, msg)
            case Wake():
                return engine.on_wake(state, msg)
            case TaskDue():
                return engine.on_task_due(state, msg)
            case _:
                return engine.on_operator(state, msg)

    async def publish(self, outs: list[Transition]) -> None:
        """Send what the transitions emit (pipelined) and wait until the broker has it all."""
        sends = [send for out in outs for send in await self._sends(out)]
        sends += await self._journal(outs)
        if sends:
            await asyncio.gather(*sends)

    async def _sends(self, out: Transition) -> list[Any]:
        topics = self.runtime.topics
        sends = []
        for task in out.tasks:
            delay = out.delays.get(task.task_id, 0.0)
            if delay > 0:  # back to the router when due (TaskDue), not to the step
                sends.append(await self.broker.publish(
                    encode(TaskDue(doc_id=task.doc_id, task=task)),
                    topics.delay(tier_for(delay)), key=_key(task.doc_id),
                    headers=delay_headers(topics.router, delay), no_confirm=True))
            else:
                sends.append(await self.broker.publish(encode(task), topics.step(task.kind),
                                                       key=_key(task.doc_id), no_confirm=True))
        for letter in out.dead_letters:
            sends.append(await self.broker.publish(
                encode(letter), topics.dead_letter, key=_key(out.state.doc_id),
                headers=letter_headers(letter), no_confirm=True))
        return sends

    async def _journal(self, outs: list[Transition]) -> list[Any]:
        """The transitions' events, one journal record a document (in their order)."""
        by_doc: dict[str, list[JournalEvent]] = {}
        for out in outs:
            for event in out.events:
                by_doc.setdefault(event.doc_id, []).append(event)
        journal = self.runtime.topics.journal
        return [await self.broker.publish(body, journal, key=_key(doc_id), headers=headers,
                                          no_confirm=True)
                for doc_id, events in by_doc.items()
                for body, headers in journal_records(events)]


def register_router(broker: KafkaBroker, runtime: Runtime) -> Router:
    router = Router(runtime, broker)
    topics = runtime.topics

    @broker.subscriber(topics.router, group_id=topics.router, ack_policy=AckPolicy.NACK_ON_ERROR,
                       auto_offset_reset="earliest", batch=True, max_records=BATCH_RECORDS,
                       batch_timeout_ms=BATCH_WAIT_MS, listener=_ForgetOnRebalance(router.states),
                       fetch_max_wait_ms=runtime.settings.fetch_wait_ms)
    async def handle(body: Any, msg: KafkaMessage) -> None:
        await router.handle_batch(msg.raw_message)

    return router

"""The bus's long-running services as FastStream subscribers.

- intake: checks submissions, enforces idempotency keys, hands documents to the router;
- router: the only writer of document state; drives each document through its flow;
- steps: one subscriber per step kind (see ``workers``);
- journal: indexes journal events and dead letters for status, history and search;
- delays: forwards delayed messages (retry back-off, partner polls) when due.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiokafka import ConsumerRecord
from aiokafka.abc import ConsumerRebalanceListener
from faststream import FastStream
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy
from pydantic import TypeAdapter, ValidationError

from bus import intake
from bus.audit.config import key_hasher
from bus.broker import encode, ensure_topics, make_broker
from bus.deadletter import letter_headers, poison_letter, source_of
from bus.delays import DelayService, delay_headers, tier_for
from bus.engine import FlowEngine, Transition
from bus.index import Index
from bus.runtime import Runtime
from bus.state import StateStore
from schemas.messages import (
    Accepted,
    ConfigurationLoaded,
    DeadLetter,
    DocumentState,
    ErrorInfo,
    JournalEvent,
    MessageSource,
    Refused,
    RouterMessage,
    StepDone,
    StepFailed,
    StepWaiting,
    SubmitMessage,
    Wake,
)

log = logging.getLogger("demat.services")
GROUPS = ("intake", "router", "steps", "journal", "delays", "sealer", "batcher")
_router_message = TypeAdapter(RouterMessage)
T = TypeVar("T")
BATCH_RECORDS = 500  # intake and router read their topics in batches of at most this
BATCH_WAIT_MS = 5  # and wait at most this for a batch when idle


def _key(doc_id: str) -> bytes:
    return doc_id.encode()


async def publish_dead_letter(broker: KafkaBroker, runtime: Runtime, letter: DeadLetter) -> None:
    await broker.publish(encode(letter), runtime.topics.dead_letter,
                         key=(letter.doc_id or letter.dlq_id).encode(),
                         headers=letter_headers(letter))


async def decode_or_dead_letter(broker: KafkaBroker, runtime: Runtime, msg: KafkaMessage,
                                parse: Callable[[bytes], T]) -> T | None:
    """Decode a message; an undecodable one is dead-lettered (raw bytes kept), not retried."""
    return await decode_raw(broker, runtime, msg.body, source_of(msg), parse)


async def decode_raw(broker: KafkaBroker, runtime: Runtime, body: bytes, source: MessageSource,
                     parse: Callable[[bytes], T]) -> T | None:
    """Decode one record read at ``source``; dead-letter it (raw bytes kept) if undecodable."""
    try:
        return parse(body)
    except ValidationError as exc:
        log.error("undecodable message at %s[%d]@%d dead-lettered", source.topic,
                  source.partition, source.offset)
        await publish_dead_letter(broker, runtime, poison_letter(body, source, exc))
        return None


def record_source(record: ConsumerRecord) -> MessageSource:
    return MessageSource(topic=record.topic, partition=record.partition, offset=record.offset)


# --- intake -----------------------------------------------------------------------


async def admit(runtime: Runtime, sub: SubmitMessage) -> Accepted | Refused:
    """Decide whether a submission starts; the verdict goes to the router."""
    env = sub.envelope
    try:
        intake.check_envelope(env, runtime.flows, runtime.tenants)
        await asyncio.to_thread(intake.check_stored_files, env, runtime.store)
        await intake.check_flow(runtime, env)
        first = await asyncio.to_thread(intake.find_duplicate, env, runtime.store)
    except intake.SubmissionError as exc:
        return Refused(doc_id=env.id, envelope=env, error=ErrorInfo(
            error_class="SubmissionError", message=str(exc), field=exc.field))
    if first is not None:
        return Refused(doc_id=env.id, envelope=env, state="duplicate", duplicate_of=first,
                       error=ErrorInfo(error_class="Duplicate", field="idempotency_key",
                                       message=f"same key and content as document {first}"))
    await asyncio.to_thread(intake.record_key, env, runtime.store)
    return Accepted(doc_id=env.id, envelope=env)


def register_intake(broker: KafkaBroker, runtime: Runtime) -> None:
    topics = runtime.topics

    @broker.subscriber(topics.submit, group_id=topics.submit, ack_policy=AckPolicy.NACK_ON_ERROR,
                       auto_offset_reset="earliest", batch=True, max_records=BATCH_RECORDS,
                       batch_timeout_ms=BATCH_WAIT_MS,
                       fetch_max_wait_ms=runtime.settings.fetch_wait_ms)
    async def handle(body: Any, msg: KafkaMessage) -> None:
        subs = [sub for rec in msg.raw_message
                if (sub := await decode_raw(broker, runtime, rec.value, record_source(rec),
                                            SubmitMessage.model_validate_json)) is not None]
        verdicts = await asyncio.gather(*(admit(runtime, sub) for sub in subs))
        sends = [await broker.publish(encode(v), topics.router, key=_key(v.doc_id),
                                      no_confirm=True) for v in verdicts]
        await asyncio.gather(*sends)


# --- router -----------------------------------------------------------------------


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
                                 key_hasher=key_hasher(runtime.settings))
        self.states = StateStore(runtime.store, runtime.settings.state_cache_size)

    async def handle(self, msg: KafkaMessage) -> None:
        decoded = await decode_or_dead_letter(self.broker, self.runtime, msg,
                                              _router_message.validate_json)
        if decoded is None:
            return
        state = await self.states.load(decoded.doc_id)
        await self.apply(self.transition(state, decoded))

    async def handle_batch(self, records: Sequence[ConsumerRecord]) -> None:
        """Apply a batch: each document's messages in order, one state save per document.

        Everything the batch emits is published before any state is saved, so a crash
        in between replays the batch onto the same states (same task ids).
        """
        by_doc: dict[str, list[Any]] = {}
        for rec in records:
            decoded = await decode_raw(self.broker, self.runtime, rec.value, record_source(rec),
                                       _router_message.validate_json)
            if decoded is not None:
                by_doc.setdefault(decoded.doc_id, []).append(decoded)
        states = await asyncio.gather(*(self.states.load(d) for d in by_doc))
        outs: list[Transition] = []
        changed: list[DocumentState] = []
        for msgs, state in zip(by_doc.values(), states, strict=True):
            dirty = False
            for decoded in msgs:
                out = self.transition(state, decoded)
                outs.append(out)
                if out.changed:
                    state, dirty = out.state, True
            if dirty and state is not None:
                changed.append(state)
        await self.publish(outs)
        await asyncio.gather(*(self.states.save(s) for s in changed))

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
            case ConfigurationLoaded():
                return engine.on_configuration(state, msg)
            case Wake():
                return engine.on_wake(state, msg)
            case _:
                return engine.on_operator(state, msg)

    async def apply(self, out: Transition) -> None:
        """Publish tasks, events and dead letters, then save the state.

        A crash in between makes the message come again: the engine then finds the
        same state and issues the same task ids, so nothing is done twice.
        """
        await self.publish([out])
        if out.changed:
            await self.states.save(out.state)

    async def publish(self, outs: list[Transition]) -> None:
        """Send what the transitions emit (pipelined) and wait until the broker has it all."""
        sends = [send for out in outs for send in await self._sends(out)]
        if sends:
            await asyncio.gather(*sends)

    async def _sends(self, out: Transition) -> list[Any]:
        topics = self.runtime.topics
        sends = []
        for task in out.tasks:
            target, delay = topics.step(task.kind), out.delays.get(task.task_id, 0.0)
            if delay > 0:
                sends.append(await self.broker.publish(
                    encode(task), topics.delay(tier_for(delay)), key=_key(task.doc_id),
                    headers=delay_headers(target, delay),
                    no_confirm=True))
            else:
                sends.append(await self.broker.publish(encode(task), target,
                                                       key=_key(task.doc_id), no_confirm=True))
        for letter in out.dead_letters:
            sends.append(await self.broker.publish(
                encode(letter), topics.dead_letter, key=_key(out.state.doc_id),
                headers=letter_headers(letter), no_confirm=True))
        for event in out.events:
            sends.append(await self.broker.publish(encode(event), topics.journal,
                                                   key=_key(event.doc_id), no_confirm=True))
        return sends


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


# --- journal index ----------------------------------------------------------------


def register_journal(broker: KafkaBroker, runtime: Runtime) -> Index:
    index = Index(runtime.settings.index_file)
    topics = runtime.topics

    @broker.subscriber(topics.journal, group_id=f"{topics.journal}.index", batch=True,
                       max_records=500, batch_timeout_ms=100, ack_policy=AckPolicy.NACK_ON_ERROR,
                       auto_offset_reset="earliest")
    async def handle(body: Any, msg: KafkaMessage) -> None:
        events = [e for raw in msg.body if (e := _parse_event(raw)) is not None]
        await asyncio.to_thread(index.add, events)

    @broker.subscriber(topics.dead_letter, group_id=f"{topics.dead_letter}.index",
                       ack_policy=AckPolicy.NACK_ON_ERROR, auto_offset_reset="earliest")
    async def handle_letter(body: Any, msg: KafkaMessage) -> None:
        try:
            letter = DeadLetter.model_validate_json(msg.body)
        except ValidationError:
            src = source_of(msg)
            letter = poison_letter(msg.body, src, ValueError("undecodable dead letter"))
        await asyncio.to_thread(index.add_dead_letter, letter)

    return index


def _parse_event(raw: bytes) -> JournalEvent | None:
    try:
        return JournalEvent.model_validate_json(raw)
    except ValidationError:
        log.error("undecodable journal event skipped: %r", raw[:200])
        return None


# --- assembly ---------------------------------------------------------------------


def build_app(runtime: Runtime, groups: list[str], step_kinds: list[str] | None = None
              ) -> FastStream:
    """A FastStream app running the given service groups in one process."""
    from bus.services.sealer import register_audit
    from workers import STEP_KINDS
    from workers.archive.batcher import register_batcher
    from workers.subscriber import StepService

    runtime.check()
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"unknown service group(s) {unknown} (known: {', '.join(GROUPS)})")
    broker = make_broker(runtime.settings, client_id="demat-" + "-".join(groups))
    kinds = step_kinds or sorted(STEP_KINDS)
    loops: list[StepService | DelayService] = []  # consumers run beside the subscribers
    if "intake" in groups:
        register_intake(broker, runtime)
    if "router" in groups:
        register_router(broker, runtime)
    if "steps" in groups:
        loops.append(StepService(broker, runtime, kinds))
    if "journal" in groups:
        register_journal(broker, runtime)
    app = FastStream(broker)
    register_audit(app, broker, runtime, groups)  # sealer; router's configuration digest
    register_batcher(app, runtime, groups)  # archive batches (workers.archive.batcher)
    if "delays" in groups:
        loops.append(DelayService(runtime.settings))
    background: list[asyncio.Task] = []

    @app.on_startup
    async def _prepare() -> None:
        # blocking S3 calls run in threads: as many as the object store has connections
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(runtime.settings.io_threads, thread_name_prefix="demat-io"))
        await ensure_topics(runtime.settings, runtime.topics.all(sorted(STEP_KINDS)))

    @app.after_startup
    async def _start_loops() -> None:
        background.extend(asyncio.create_task(loop.run()) for loop in loops)

    @app.on_shutdown
    async def _stop_loops() -> None:
        for loop in loops:
            loop.stop()
        await asyncio.gather(*background, return_exceptions=True)

    return app

"""The bus's long-running services as FastStream subscribers.

- intake: checks submissions, enforces idempotency keys, hands documents to the router;
- router: the only writer of document state; drives each document through its flow;
- steps: one subscriber per step kind (see ``workers``);
- journal: indexes journal events for status, history and search.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka.abc import ConsumerRebalanceListener
from faststream import FastStream
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy
from pydantic import TypeAdapter, ValidationError

from bus import intake
from bus.broker import encode, ensure_topics, make_broker
from bus.engine import FlowEngine, Transition
from bus.index import Index
from bus.runtime import Runtime
from bus.state import StateStore
from schemas.messages import (
    Accepted,
    ErrorInfo,
    JournalEvent,
    Refused,
    RouterMessage,
    StepDone,
    SubmitMessage,
)

log = logging.getLogger("demat.services")
GROUPS = ("intake", "router", "steps", "journal")
_router_message = TypeAdapter(RouterMessage)


def _key(doc_id: str) -> bytes:
    return doc_id.encode()


# --- intake -----------------------------------------------------------------------


async def admit(runtime: Runtime, sub: SubmitMessage) -> Accepted | Refused:
    """Decide whether a submission starts; the verdict goes to the router."""
    env = sub.envelope
    try:
        intake.check_envelope(env, runtime.flows, runtime.tenants)
        await asyncio.to_thread(intake.check_stored_files, env, runtime.store)
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
                       auto_offset_reset="earliest")
    async def handle(body: Any, msg: KafkaMessage) -> None:
        try:
            sub = SubmitMessage.model_validate_json(msg.body)
        except ValidationError as exc:
            log.error("undecodable submission dropped: %s", exc)
            return
        verdict = await admit(runtime, sub)
        await broker.publish(encode(verdict), topics.router, key=_key(verdict.doc_id))


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
        self.engine = FlowEngine(runtime.flows, runtime.tenants)
        self.states = StateStore(runtime.store, runtime.settings.state_cache_size)

    async def handle(self, raw: bytes) -> None:
        try:
            msg = _router_message.validate_json(raw)
        except ValidationError as exc:
            log.error("undecodable router message dropped: %s", exc)
            return
        state = await self.states.load(msg.doc_id)
        match msg:
            case Accepted():
                out = self.engine.on_accepted(state, msg)
            case Refused():
                out = self.engine.on_refused(state, msg)
            case StepDone():
                out = self.engine.on_step_done(state, msg)
            case _:
                out = self.engine.on_step_failed(state, msg)
        await self.apply(out)

    async def apply(self, out: Transition) -> None:
        """Publish tasks and events, then save the state (a crash in between replays)."""
        topics = self.runtime.topics
        sends = [await self.broker.publish(encode(t), topics.step(t.kind), key=_key(t.doc_id),
                                           no_confirm=True) for t in out.tasks]
        sends += [await self.broker.publish(encode(e), topics.journal, key=_key(e.doc_id),
                                            no_confirm=True) for e in out.events]
        if sends:
            await asyncio.gather(*sends)
        if out.changed:
            await self.states.save(out.state)


def register_router(broker: KafkaBroker, runtime: Runtime) -> Router:
    router = Router(runtime, broker)
    topics = runtime.topics

    @broker.subscriber(topics.router, group_id=topics.router, ack_policy=AckPolicy.NACK_ON_ERROR,
                       auto_offset_reset="earliest", max_workers=runtime.settings.partitions,
                       listener=_ForgetOnRebalance(router.states))
    async def handle(body: Any, msg: KafkaMessage) -> None:
        await router.handle(msg.body)

    return router


# --- journal index ----------------------------------------------------------------


def register_journal(broker: KafkaBroker, runtime: Runtime) -> Index:
    index = Index(runtime.settings.index_file)
    topics = runtime.topics

    @broker.subscriber(topics.journal, group_id=f"{topics.journal}.index", batch=True,
                       max_records=500, batch_timeout_ms=100, ack_policy=AckPolicy.NACK_ON_ERROR,
                       auto_offset_reset="earliest")
    async def handle(body: Any, msg: KafkaMessage) -> None:
        events = []
        for raw in msg.body:
            try:
                events.append(JournalEvent.model_validate_json(raw))
            except ValidationError as exc:
                log.error("undecodable journal event dropped: %s", exc)
        await asyncio.to_thread(index.add, events)

    return index


# --- assembly ---------------------------------------------------------------------


def build_app(runtime: Runtime, groups: list[str], step_kinds: list[str] | None = None
              ) -> FastStream:
    """A FastStream app running the given service groups in one process."""
    from workers import STEP_KINDS
    from workers.subscriber import register as register_step

    runtime.check()
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"unknown service group(s) {unknown} (known: {', '.join(GROUPS)})")
    broker = make_broker(runtime.settings, client_id="demat-" + "-".join(groups))
    kinds = step_kinds or sorted(STEP_KINDS)
    if "intake" in groups:
        register_intake(broker, runtime)
    if "router" in groups:
        register_router(broker, runtime)
    if "steps" in groups:
        for kind in kinds:
            register_step(broker, runtime, kind)
    if "journal" in groups:
        register_journal(broker, runtime)
    app = FastStream(broker)

    @app.on_startup
    async def _prepare() -> None:
        await ensure_topics(runtime.settings, runtime.topics.all(sorted(STEP_KINDS)))

    return app

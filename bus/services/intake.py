"""Service group ``intake``: checks submissions, enforces idempotency keys, and hands
each verdict (accepted or refused) to the router."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy

from bus import intake
from bus.broker import encode
from bus.deadletter import decode_or_dead_letter, failure_info, is_transient, record_source
from bus.receipts import Receipts
from bus.runtime import Runtime
from schemas.messages import Accepted, ErrorInfo, Refused, SubmitMessage

BATCH_RECORDS = 500  # intake reads its topic in batches of at most this
BATCH_WAIT_MS = 5  # and waits at most this for a batch when idle
PRUNE_EVERY = 60.0  # seconds between two prunings of the producers' receipts
log = logging.getLogger("demat.intake")


async def admit(runtime: Runtime, sub: SubmitMessage,
                stored: set[tuple[str, int]] | None = None) -> Accepted | Refused:
    """Decide whether a submission starts; the verdict goes to the router. ``stored``:
    the (sha256, size) of the files the door's receipt of this document lists (those are
    in the object store). An unexpected exception refuses that submission, naming it;
    only infrastructure errors raise (the batch is read again)."""
    try:
        return await _verdict(runtime, sub, stored or set())
    except Exception as exc:
        if is_transient(exc):
            raise
        env = sub.envelope
        log.warning("submission %s refused by an unexpected %s", env.id, type(exc).__name__)
        return Refused(doc_id=env.id, envelope=env, error=failure_info(exc))


async def _verdict(runtime: Runtime, sub: SubmitMessage, stored: set[tuple[str, int]]
                   ) -> Accepted | Refused:
    env = sub.envelope
    try:
        intake.check_envelope(env, runtime.flows, runtime.tenants)
        if not {(ref.sha256, ref.size) for ref in env.files} <= stored:
            await asyncio.to_thread(intake.check_stored_files, env, runtime.store)
        await intake.check_flow(runtime, env)
        first = await asyncio.to_thread(runtime.keys.claim, env)
    except intake.SubmissionError as exc:
        return Refused(doc_id=env.id, envelope=env, error=ErrorInfo(
            error_class="SubmissionError", message=str(exc), field=exc.field))
    if first is not None:
        return Refused(doc_id=env.id, envelope=env, state="duplicate", duplicate_of=first,
                       error=ErrorInfo(error_class="Duplicate", field="idempotency_key",
                                       message=f"same key and content as document {first}"))
    return Accepted(doc_id=env.id, envelope=env)


class ReceiptPruner:
    """Deletes, every ``every`` seconds, the receipts of documents the router has."""

    def __init__(self, receipts: Receipts, every: float = PRUNE_EVERY) -> None:
        self.receipts, self.every = receipts, every
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        while not self._stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self.every)
            try:
                await asyncio.to_thread(self.receipts.prune)
            except Exception:  # the next round tries again; receipts are only answers
                log.exception("pruning the producers' receipts failed")

    def stop(self) -> None:
        self._stopped.set()


def register_intake(broker: KafkaBroker, runtime: Runtime) -> None:
    topics = runtime.topics

    @broker.subscriber(topics.submit, group_id=topics.submit, ack_policy=AckPolicy.NACK_ON_ERROR,
                       auto_offset_reset="earliest", batch=True, max_records=BATCH_RECORDS,
                       batch_timeout_ms=BATCH_WAIT_MS,
                       fetch_max_wait_ms=runtime.settings.fetch_wait_ms)
    async def handle(body: Any, msg: KafkaMessage) -> None:
        subs = [sub for rec in msg.raw_message
                if (sub := await decode_or_dead_letter(
                    broker, topics, rec.value, record_source(rec),
                    SubmitMessage.model_validate_json)) is not None]
        stored = await asyncio.to_thread(runtime.receipts.stored_files,
                                         [sub.envelope.id for sub in subs])
        verdicts = await asyncio.gather(*(admit(runtime, sub, stored.get(sub.envelope.id))
                                          for sub in subs))
        sends = [await broker.publish(encode(v), topics.router, key=v.doc_id.encode(),
                                      no_confirm=True) for v in verdicts]
        await asyncio.gather(*sends)

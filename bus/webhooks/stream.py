"""A tenant's events as a Server-Sent Events stream (for consoles; the API serves it).

``tenant_stream`` reads the journal topic with its own group-less consumer (every
partition, no committed offsets: each stream is independent) and yields SSE frames
of the tenant's webhook events, the same payloads as the webhooks:

    id: <cursor: "partition:next offset" of every journal partition, comma-separated>
    event: <webhook event type>
    data: <the JSON payload, whose "id" is the event id>

and a comment line every ``heartbeat_s`` when nothing happens (proxies keep the
connection open). A client resumes with the last ``id`` it saw (``Last-Event-ID``):
the stream restarts right after that frame's journal record. Delivery is at least
once (a consumer may read a record twice): clients dedup by the payload's ``id``, as
webhook receivers do.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from bus.broker import journal_lines
from bus.settings import Settings
from bus.topics import Topics
from bus.webhooks.events import matches, payload, webhook_types
from schemas.messages import JournalEvent

HEARTBEAT = ": keep-alive\n\n"


def sse_frame(event_type: str, data: bytes, frame_id: str) -> str:
    """One SSE frame (the payload is one line of compact JSON)."""
    return f"id: {frame_id}\nevent: {event_type}\ndata: {data.decode()}\n\n"


def cursor(positions: dict[int, int]) -> str:
    return ",".join(f"{p}:{o}" for p, o in sorted(positions.items()))


def parse_cursor(value: str) -> dict[int, int]:
    """Partition -> next offset of a cursor (``Last-Event-ID``); ValueError if malformed."""
    try:
        return {int(p): int(o) for p, o in (part.split(":") for part in value.split(","))}
    except ValueError:
        raise ValueError(f"Last-Event-ID: {value!r} is not a stream cursor") from None


def frames_of(value: bytes, frame_id: str, tenant: str, patterns: Sequence[str]
              ) -> list[str]:
    """The SSE frames one journal record's events make for ``tenant`` (none if not its
    own)."""
    frames = []
    for line in journal_lines(value):
        try:
            event = JournalEvent.model_validate_json(line)
        except ValidationError:
            continue
        if event.tenant == tenant:
            frames += [sse_frame(t, payload(event, t), frame_id)
                       for t in webhook_types(event) if matches(list(patterns), t)]
    return frames


async def tenant_stream(settings: Settings, tenant: str, patterns: Sequence[str] = ("*",),
                        since: str | None = None, heartbeat_s: float = 15.0
                        ) -> AsyncIterator[str]:
    """SSE frames of ``tenant``'s events from now (or after the cursor ``since``), until
    closed."""
    resume = parse_cursor(since) if since else None
    journal = Topics(settings.topic_prefix).journal
    consumer = AIOKafkaConsumer(journal, **settings.kafka_options, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="latest",
                                fetch_max_wait_ms=settings.fetch_wait_ms)
    await consumer.start()
    try:
        positions = await _position(consumer, resume)
        yield HEARTBEAT  # the stream is open: what happens from here on comes
        while True:
            batch = await consumer.getmany(timeout_ms=int(heartbeat_s * 1000))
            for tp, records in batch.items():
                for r in records:
                    positions[tp.partition] = r.offset + 1
                    for frame in frames_of(r.value, cursor(positions), tenant, patterns):
                        yield frame
            if not batch:
                yield HEARTBEAT
    finally:
        await consumer.stop()


async def _position(consumer: AIOKafkaConsumer, resume: dict[int, int] | None
                    ) -> dict[int, int]:
    """Wait for the partitions, seek them to the cursor ``resume`` (partitions it does
    not name: their end) and return the positions (partition -> next offset)."""
    while not consumer.assignment():
        await asyncio.sleep(0.05)
    parts = list(consumer.assignment())
    await consumer.seek_to_end(*parts)
    for tp in parts:
        if resume and tp.partition in resume:
            consumer.seek(tp, resume[tp.partition])
    return {tp.partition: await consumer.position(tp) for tp in parts}

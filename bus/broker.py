"""Kafka broker access: FastStream broker factory, topic creation, encoding."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import BaseModel

from bus.settings import Settings
from schemas.messages import JournalEvent

log = logging.getLogger("demat.broker")
SASL_SECURITY = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256,
                 "SCRAM-SHA-512": SASLScram512}


def make_broker(settings: Settings, client_id: str = "demat") -> KafkaBroker:
    """A FastStream Kafka broker with at-least-once producer settings.

    The idempotent producer is off on purpose: not every Kafka-protocol broker
    supports it (Tansu does not), and every step is idempotent anyway.
    """
    return KafkaBroker(
        settings.bootstrap,
        security=broker_security(settings),
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        linger_ms=settings.linger_ms,
        request_timeout_ms=30_000,
        retry_backoff_ms=200,
        graceful_timeout=10.0,
        logger=logging.getLogger(f"demat.{client_id}"),
        log_level=logging.DEBUG,
    )


def broker_security(settings: Settings) -> BaseSecurity | None:
    """FastStream's form of the configured Kafka security (``None``: PLAINTEXT)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    tls = {"ssl_context": settings.kafka_ssl_context(), "use_ssl": settings.kafka_tls}
    if protocol == "SSL":
        return BaseSecurity(**tls)
    sasl = SASL_SECURITY[settings.kafka_sasl_mechanism or ""]
    return sasl(settings.kafka_username or "", settings.kafka_secret or "", **tls)


TENANT_HEADER = "demat-tenant"  # a journal record's tenant and event types (comma-separated),
EVENT_HEADER = "demat-event"  # readable without decoding it (the webhooks' fan-out skips by them)
RECORD_EVENTS = 100  # at most this many events in one journal record


def journal_records(events: Sequence[JournalEvent]) -> list[tuple[bytes, dict[str, str]]]:
    """The journal records (body, headers) of one document's events, in order: one
    record for them all (at most ``RECORD_EVENTS`` a record), an event a line, each line
    the event's JSON exactly as the sealer writes it to the segments."""
    records = []
    for start in range(0, len(events), RECORD_EVENTS):
        part = events[start:start + RECORD_EVENTS]
        types = ",".join(dict.fromkeys(e.type for e in part))
        records.append((b"\n".join(encode(e) for e in part),
                        {TENANT_HEADER: part[0].tenant or "", EVENT_HEADER: types}))
    return records


def journal_lines(value: bytes) -> list[bytes]:
    """The event lines of a journal record (a record of an older bus holds one)."""
    return [line for line in value.split(b"\n") if line.strip()]


def encode(model: BaseModel) -> bytes:
    """JSON bytes of a contract model (what goes on the wire)."""
    return model.model_dump_json(exclude_none=False).encode()


async def ensure_topics(settings: Settings, topics: list[str], attempts: int = 30) -> None:
    """Create missing topics with the configured number of partitions."""
    for attempt in range(1, attempts + 1):
        admin = AIOKafkaAdminClient(**settings.kafka_options, client_id="demat-admin")
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [t for t in topics if t not in existing]
            for topic in missing:
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(
                        [NewTopic(topic, num_partitions=settings.partitions, replication_factor=1)]
                    )
            return
        except (KafkaError, OSError) as exc:
            if attempt == attempts:
                raise
            log.info("broker not ready for topic creation (%s), retrying", exc)
            await asyncio.sleep(0.5)
        finally:
            await admin.close()


async def start_producer(settings: Settings) -> AIOKafkaProducer:
    """A started plain producer (acks from all replicas), for code outside FastStream
    handlers (steps publishing to other services); its owner stops it."""
    producer = AIOKafkaProducer(**settings.kafka_options, acks="all",
                                enable_idempotence=False, linger_ms=5)
    await producer.start()
    return producer

"""Dead letters: building them (with their context as headers), decoding records or
dead-lettering them, and publishing them: the one place for all of it.

Also what makes a message poison: an exception that is not a transient infrastructure
error (``is_transient``: Kafka, S3, PostgreSQL or a partner unreachable, time-outs) is that
message's failure, never a reason to read it again (``failure_info`` names it).
"""

from __future__ import annotations

import base64
import logging
import traceback
from collections.abc import Callable
from typing import TypeVar

import httpx
import psycopg
import urllib3
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from faststream.kafka import KafkaBroker
from minio.error import S3Error, ServerError
from pydantic import ValidationError

from bus.broker import encode
from bus.topics import Topics
from schemas.messages import DeadLetter, ErrorInfo, MessageSource

log = logging.getLogger("demat.deadletter")
T = TypeVar("T")
# S3 error codes of a store that is unavailable or misconfigured, not of a bad message
TRANSIENT_S3_CODES = frozenset({
    "InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "AccessDenied",
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "RequestTimeTooSkewed", "NoSuchBucket"})


def is_transient(exc: BaseException) -> bool:
    """True for infrastructure trouble worth retrying the message for (Kafka, S3 or
    PostgreSQL unreachable, time-outs), looking through ``raise ... from`` causes too."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _transient_itself(current):
            return True
        current = current.__cause__
    return False


def _transient_itself(exc: BaseException) -> bool:
    if isinstance(exc, KafkaError):
        return exc.retriable or isinstance(exc, KafkaConnectionError | KafkaTimeoutError)
    if isinstance(exc, S3Error):
        return exc.code in TRANSIENT_S3_CODES
    return isinstance(exc, ConnectionError | TimeoutError | ServerError
                      | urllib3.exceptions.HTTPError | httpx.TransportError
                      | psycopg.OperationalError | psycopg.InterfaceError)


def failure_info(exc: BaseException, **extra: object) -> ErrorInfo:
    """An unexpected exception as the failure of the message it was raised for: its class
    and message named, its traceback kept, not retryable."""
    return ErrorInfo(error_class=type(exc).__name__,
                     message=str(exc)[:2000] or f"{type(exc).__name__} raised",
                     traceback="".join(traceback.format_exception(exc))[-4000:], **extra)


def poison_letter(raw: bytes, source: MessageSource, error: Exception) -> DeadLetter:
    """A dead letter for a message that cannot even be decoded (kept as raw bytes)."""
    return DeadLetter(
        source=source, raw=base64.b64encode(raw).decode(),
        error=ErrorInfo(error_class=type(error).__name__, message=str(error)[:2000]))


def record_letter(record: ConsumerRecord, error: BaseException) -> DeadLetter:
    """A dead letter for a record whose handling failed for good (raw bytes kept)."""
    key = record.key.decode(errors="replace") if record.key else None
    return DeadLetter(doc_id=key, source=record_source(record),
                      raw=base64.b64encode(record.value or b"").decode(),
                      error=failure_info(error))


def letter_headers(letter: DeadLetter) -> dict[str, str]:
    """The letter's context as Kafka headers (the body holds it all too)."""
    headers = {
        "demat-dlq-id": letter.dlq_id,
        "demat-error-class": letter.error.error_class,
        "demat-retryable": str(letter.error.retryable).lower(),
        "demat-attempts": str(letter.attempts),
        "demat-last-failure": letter.last_failure_at.isoformat(),
    }
    optional = {
        "demat-doc-id": letter.doc_id, "demat-tenant": letter.tenant,
        "demat-flow": letter.flow, "demat-step": letter.step,
        "demat-first-failure": letter.first_failure_at.isoformat()
        if letter.first_failure_at else None,
    }
    if letter.source is not None:
        optional |= {"demat-source-topic": letter.source.topic,
                     "demat-source-partition": str(letter.source.partition),
                     "demat-source-offset": str(letter.source.offset)}
    return headers | {k: v for k, v in optional.items() if v is not None}


def source_of(msg: object) -> MessageSource:
    """Topic, partition and offset of a FastStream Kafka message."""
    record = getattr(msg, "raw_message", None)
    if isinstance(record, tuple):  # batch: the first record
        record = record[0]
    return MessageSource(topic=getattr(record, "topic", "?"),
                         partition=getattr(record, "partition", -1),
                         offset=getattr(record, "offset", -1))


def record_source(record: ConsumerRecord) -> MessageSource:
    """Topic, partition and offset of a raw Kafka record."""
    return MessageSource(topic=record.topic, partition=record.partition, offset=record.offset)


async def publish_dead_letter(broker: KafkaBroker, topics: Topics, letter: DeadLetter) -> None:
    """Send one dead letter, keyed by its document (or its own id), context as headers."""
    await broker.publish(encode(letter), topics.dead_letter,
                         key=(letter.doc_id or letter.dlq_id).encode(),
                         headers=letter_headers(letter))


async def decode_or_dead_letter(broker: KafkaBroker, topics: Topics, body: bytes,
                                source: MessageSource, parse: Callable[[bytes], T]) -> T | None:
    """Decode one record read at ``source``; dead-letter it (raw bytes kept) if undecodable."""
    try:
        return parse(body)
    except ValidationError as exc:
        log.error("undecodable message at %s[%d]@%d dead-lettered", source.topic,
                  source.partition, source.offset)
        await publish_dead_letter(broker, topics, poison_letter(body, source, exc))
        return None

"""The webhooks' fan-out skips, by the journal record's headers and without decoding it,
an event whose type makes no webhook event or whose tenant has no subscription; a record
without those headers is decoded as before. Handler unit test: the broker only records
what would be published."""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from pydantic import ValidationError

from bus.broker import EVENT_HEADER, TENANT_HEADER, journal_records
from bus.services.webhooks import WebhookService
from bus.settings import Settings
from bus.topics import Topics
from bus.webhooks.pastell import pastell_body
from bus.webhooks.subscriptions import Subscription
from schemas.messages import JournalEvent

TENANT, OTHER = "216900910", "200066793"
UNDECODABLE = b"{not json"  # decoding it would be logged and skipped: no delivery either


class Published:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def publish(self, body: bytes, topic: str, **_: Any) -> Any:
        self.sent.append(topic)
        return asyncio.sleep(0)  # what the router awaits: the broker's acknowledgement


def _service() -> tuple[WebhookService, Published, Topics]:
    settings = Settings(kafka_bootstrap="127.0.0.1:1")  # never connected: a unit test
    topics, broker = Topics("fan"), Published()
    service = WebhookService(broker, SimpleNamespace(settings=settings, topics=topics))
    sub = Subscription(tenant=TENANT, url="http://127.0.0.1:1/hook", event_types=["*"],
                       secret="s1")
    service._subs, service._loaded_at = {sub.id: sub}, time.monotonic() + 1e9
    return service, broker, topics


def _record(topics: Topics, value: bytes, headers: dict[str, str] | None) -> ConsumerRecord:
    pairs = tuple((k, v.encode()) for k, v in (headers or {}).items())
    return ConsumerRecord(topic=topics.journal, partition=0, offset=1, timestamp=0,
                          timestamp_type=0, key=b"doc", value=value, checksum=None,
                          serialized_key_size=0, serialized_value_size=0, headers=pairs)


def _completed(tenant: str) -> JournalEvent:
    return JournalEvent(event_id=f"ev-{tenant}", doc_id="01doc", seq=3, tenant=tenant,
                        flow="document", type="completed", state="completed")


def event_headers(tenant: str, types: str) -> dict[str, str]:
    return {TENANT_HEADER: tenant, EVENT_HEADER: types}


def test_a_record_making_nothing_is_skipped_by_its_headers() -> None:
    service, _, topics = _service()
    assert asyncio.run(service._makes_nothing(
        _record(topics, UNDECODABLE, event_headers(TENANT, "step-started"))))
    assert asyncio.run(service._makes_nothing(
        _record(topics, UNDECODABLE, event_headers(OTHER, "completed"))))
    assert not asyncio.run(service._makes_nothing(
        _record(topics, UNDECODABLE, event_headers(TENANT, "completed"))))
    assert not asyncio.run(service._makes_nothing(_record(topics, UNDECODABLE, None)))


def test_an_event_of_a_subscribed_tenant_is_delivered_with_or_without_headers() -> None:
    service, broker, topics = _service()
    event = _completed(TENANT).model_dump_json().encode()
    asyncio.run(service.fan_out(_record(topics, event, event_headers(TENANT, "completed"))))
    asyncio.run(service.fan_out(_record(topics, event, None)))  # an older record
    assert broker.sent == [topics.webhooks, topics.webhooks]
    other = _completed(OTHER).model_dump_json().encode()
    asyncio.run(service.fan_out(_record(topics, other, event_headers(OTHER, "completed"))))
    assert len(broker.sent) == 2


def test_every_event_of_a_record_is_fanned_out() -> None:
    service, broker, topics = _service()
    started = _completed(TENANT).model_copy(update={"event_id": "ev-s", "seq": 2,
                                                     "type": "step-started"})
    [(body, headers)] = journal_records([started, _completed(TENANT)])
    assert headers[EVENT_HEADER] == "step-started,completed"
    record = _record(topics, body, headers)
    assert not asyncio.run(service._makes_nothing(record))  # one of its events makes some
    asyncio.run(service.fan_out(record))
    assert broker.sent == [topics.webhooks]  # the completed event's delivery


class DoorRecords:
    """The Pastell door's records by bus document (what ``PastellStore`` answers)."""

    def __init__(self, records: dict[str, dict]) -> None:
        self.records = records

    def of_bus_document(self, doc_id: str) -> dict | None:
        return self.records.get(doc_id)


DRAFT = {"info": {"id_d": "AbC1234", "type": "ls-document-pdf", "titre": "Note"},
         "id_e": "3", "doc_id": "01doc"}


def test_a_pastell_body_is_what_a_pastell_client_polls_for() -> None:
    body = json.loads(pastell_body(DoorRecords({"01doc": DRAFT}), _completed(TENANT),
                                   "document.completed") or b"")
    assert body == {"id": "ev-216900910/document.completed", "event": "document.completed",
                    "id_e": "3", "id_d": "AbC1234", "type": "ls-document-pdf",
                    "titre": "Note", "last_action": {"action": "termine",
                                                     "message": "Traitement terminé",
                                                     "date": body["last_action"]["date"]}}
    assert pastell_body(DoorRecords({}), _completed(TENANT), "document.completed") is None
    with pytest.raises(ValidationError):
        Subscription(tenant=TENANT, url="http://h/x", event_types=["*"], shape="soap")


def test_a_pastell_subscription_gets_only_the_doors_documents() -> None:
    service, broker, topics = _service()
    sub = Subscription(tenant=TENANT, url="http://127.0.0.1:1/p", event_types=["*"],
                       secret="s2", shape="pastell")
    service._subs[sub.id] = sub
    service._pastell = DoorRecords({"01doc": DRAFT})  # type: ignore[assignment]
    event = _completed(TENANT).model_dump_json().encode()
    asyncio.run(service.fan_out(_record(topics, event, None)))
    assert len(broker.sent) == 2  # the native subscription's and the Pastell one's
    service._pastell = DoorRecords({})  # type: ignore[assignment]
    asyncio.run(service.fan_out(_record(topics, event, None)))
    assert len(broker.sent) == 3  # not a door's document: the native one only

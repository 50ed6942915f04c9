"""The AsyncAPI 3.0 document of the topics a producer or consumer outside the bus uses.

A producer that publishes to Kafka directly (rather than through the HTTP API or the
SDK) first puts each file in the object store under ``files/<tenant>/<sha256[:2]>/<sha256>``
(its SHA-256 is its name), then publishes a ``SubmitMessage`` on the submit topic, keyed by
the document id. The journal and dead-letter topics can be read by outside consumers.
The payload schemas are the contract models' own JSON schemas (``schemas/messages.py``),
so the document cannot drift from what the bus reads and writes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from bus.broker import EVENT_HEADER, TENANT_HEADER
from bus.topics import Topics
from schemas.messages import DeadLetter, JournalEvent, SubmitMessage

ASYNCAPI_VERSION = "3.0.0"
JOURNAL_HEADERS = {"type": "object", "properties": {
    TENANT_HEADER: {"type": "string", "description": "the event's tenant (SIREN; empty "
                    "for none): filter without decoding"},
    EVENT_HEADER: {"type": "string", "description": "the `type` of the record's events, "
                   "comma-separated"}}}
KEY_SCHEMA = {"type": "string", "description": "the document id (UUID): a document's "
              "messages stay ordered on one partition"}


def asyncapi_document(topics: Topics, *, version: str, servers: dict[str, str] | None = None
                      ) -> dict[str, Any]:
    """The AsyncAPI document of ``topics`` (``servers``: name -> Kafka bootstrap host)."""
    channels = {
        "submit": _channel(topics.submit, "Producers publish new documents here, once their "
                           "files are in the object store.", SubmitMessage),
        "journal": _channel(topics.journal, "Every journal event of every document. A "
                            "record holds the events one router batch made for one "
                            "document, in order, one JSON event a line (newline-delimited).",
                            JournalEvent, JOURNAL_HEADERS, "application/x-ndjson"),
        "deadLetters": _channel(topics.dead_letter, "Messages and documents the bus gave up "
                                "on, with what is needed to act on them.", DeadLetter),
    }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": "demat-bus topics", "version": version,
                 "description": __doc__.strip()},
        "servers": {name: {"host": host, "protocol": "kafka"}
                    for name, host in (servers or {}).items()},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": {
            "submitDocument": _operation("send", "submit", "Submit a document."),
            "readJournal": _operation("receive", "journal", "Follow the journal."),
            "readDeadLetters": _operation("receive", "deadLetters", "Watch dead letters."),
        },
        "components": {"schemas": _schemas(SubmitMessage, JournalEvent, DeadLetter)},
    }


def _channel(address: str, description: str, model: type[BaseModel],
             headers: dict[str, Any] | None = None, content_type: str = "application/json"
             ) -> dict[str, Any]:
    name = model.__name__
    message = {"name": name, "title": name, "summary": (model.__doc__ or "").strip(),
               "contentType": content_type,
               "payload": {"$ref": f"#/components/schemas/{name}"},
               "bindings": {"kafka": {"key": KEY_SCHEMA, "bindingVersion": "0.5.0"}}}
    if headers:
        message["headers"] = headers
    return {"address": address, "description": description, "messages": {name: message}}


def _operation(action: str, channel: str, summary: str) -> dict[str, Any]:
    return {"action": action, "summary": summary, "channel": {"$ref": f"#/channels/{channel}"}}


def _schemas(*models: type[BaseModel]) -> dict[str, Any]:
    """The models' JSON schemas, their nested definitions lifted to ``components``."""
    found: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        found.update(schema.pop("$defs", {}))
        found[model.__name__] = schema
    return found

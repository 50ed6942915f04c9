"""Webhook event types made from the journal, and their payloads.

One journal event makes zero or more webhook events:

- ``document.<type>`` for the journal events that change a document's state:
  ``document.submitted``, ``document.completed``, ``document.error``,
  ``document.rejected``, ``document.duplicate``, ``document.replayed``,
  ``document.discarded``, ``document.waiting`` (a step waits on a partner);
- ``step.done`` for every step done;
- ``dead-letter`` when the document is dead-lettered (journal ``error``);
- ``partner-reply`` when a waiting or finished step recorded what a partner sent back
  (its journal event lists artefacts).

A webhook event's id is ``<journal event id>/<type>``: stable across retries and
redeliveries, unique per type.
"""

from __future__ import annotations

import fnmatch
import json

from schemas.messages import JournalEvent

STATE_EVENTS = {"submitted": "submitted", "completed": "completed", "error": "error",
                "rejected": "rejected", "duplicate": "duplicate", "replayed": "replayed",
                "discarded": "discarded", "step-waiting": "waiting"}
EVENT_TYPES = (*(f"document.{s}" for s in STATE_EVENTS.values()), "step.done",
               "dead-letter", "partner-reply")


MAKING_TYPES = {*STATE_EVENTS, "step-done"}  # the journal event types that make some


def webhook_types(event: JournalEvent) -> list[str]:
    """The webhook event types ``event`` makes (see the module docstring)."""
    types = []
    if event.type in STATE_EVENTS:
        types.append(f"document.{STATE_EVENTS[event.type]}")
    if event.type == "step-done":
        types.append("step.done")
    if event.type == "error" and event.detail.get("dlq_id"):
        types.append("dead-letter")
    if event.type in ("step-waiting", "step-done") and event.detail.get("artefacts"):
        types.append("partner-reply")
    return types


def check_patterns(patterns: list[str]) -> list[str]:
    """The patterns, each a known type or a glob matching one (``*``, ``document.*``)."""
    if not patterns:
        raise ValueError("events: give at least one event type")
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(t, pattern) for t in EVENT_TYPES):
            raise ValueError(f"events: {pattern!r} matches no event type "
                             f"(known: {', '.join(EVENT_TYPES)})")
    return patterns


def matches(patterns: list[str], event_type: str) -> bool:
    return any(fnmatch.fnmatchcase(event_type, p) for p in patterns)


def event_id(event: JournalEvent, event_type: str) -> str:
    return f"{event.event_id}/{event_type}"


def payload(event: JournalEvent, event_type: str) -> bytes:
    """The JSON body POSTed for ``event`` as ``event_type`` (compact, UTF-8)."""
    body = {
        "id": event_id(event, event_type), "type": event_type, "tenant": event.tenant,
        "document": event.doc_id, "occurred_at": event.at.isoformat(),
        "data": {"journal_type": event.type, "seq": event.seq, "state": event.state.value,
                 "flow": event.flow, "step": event.step, "actor": event.actor,
                 "detail": event.detail},
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode()

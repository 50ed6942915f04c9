"""Pastell-shaped webhook bodies (subscriptions of shape ``pastell``): for each webhook
event of a document made through the Pastell door, what its client would poll for:

    {"id": <event id>, "event": <webhook event type>, "id_e", "id_d", "type": <flux>,
     "titre", "last_action": {"action", "message", "date"}}

with the incumbent's state name as ``last_action.action`` (``bus.pastell.states``).
Documents the door did not make have no Pastell identity: they make no such body."""

from __future__ import annotations

import json

from bus.pastell.states import event_action
from bus.pastell.store import PastellStore
from bus.webhooks.events import event_id, payload
from schemas.messages import JournalEvent


def pastell_body(store: PastellStore, event: JournalEvent, event_type: str) -> bytes | None:
    """The Pastell body of ``event`` as ``event_type``, ``None`` if it has none."""
    record = store.of_bus_document(event.doc_id)
    if record is None:
        return None
    action = event_action(record, json.loads(payload(event, event_type)))
    if action is None:
        return None
    body = {"id": event_id(event, event_type), "event": event_type, "id_e": action["id_e"],
            "id_d": action["id_d"], "type": action["flux"],
            "titre": str(record["info"].get("titre", "")),
            "last_action": {k: action[k] for k in ("action", "message", "date")}}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

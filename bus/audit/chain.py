"""Per-document hash chain of journal events.

Each event carries ``prev_hash`` (the hash of the document's previous event,
``None`` for its first) and ``hash`` = SHA-256 hex of the event's canonical
JSON without its ``hash`` field: keys sorted, no spaces, UTF-8
(``json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``),
so anyone can recompute it with a stdlib-only script.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical(value: Any) -> bytes:
    """The canonical JSON bytes of a JSON-compatible value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode()


def event_hash(event: dict[str, Any]) -> str:
    """Hash of a journal event given as JSON data (its own ``hash`` left out)."""
    return hashlib.sha256(canonical({k: v for k, v in event.items() if k != "hash"})).hexdigest()

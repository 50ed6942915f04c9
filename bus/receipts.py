"""The door's receipt of each document it accepted, until the router has the document.

``GET /v1/documents/{id}`` and its artefacts answer from the receipt (state
``submitted``) between the ``202`` and the router's first save, and intake takes the
files a receipt lists as stored (the door stored them; only the bus writes its
database), without asking the object store again. Receipts live in the
bus's database (table ``api_receipts``), on a connection of their own whose commits do
not wait for the disk (a receipt lost in a database crash only makes the document answer
404 until the router has it; waiting for each flush capped the door at the disk's flush
rate); the door prunes those whose document has a state.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from bus.database import Database
from schemas.envelope import Envelope

PRUNE_EVERY = 60.0  # seconds between two prunings
KEEP = ("INSERT INTO api_receipts (doc_id, tenant, record) VALUES (%s, %s, %s) "
        "ON CONFLICT (doc_id) DO NOTHING")
PRUNE = ("DELETE FROM api_receipts r USING document_states s WHERE r.doc_id = s.doc_id")
log = logging.getLogger(__name__)


class Receipts:
    """Keep, read, drop and prune the door's receipts."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def keep(self, env: Envelope) -> None:
        record = {"id": env.id, "tenant": env.tenant, "flow": env.flow,
                  "producer": env.producer, "submitted_by": env.submitted_by,
                  "created_at": env.created_at.isoformat(),
                  "files": [ref.model_dump(mode="json") for ref in env.files]}
        self.db.run(lambda db: db.execute(KEEP, (env.id, env.tenant, json.dumps(record))))

    def get(self, doc_id: str) -> dict[str, Any] | None:
        row = self.db.run(lambda db: db.execute(
            "SELECT record FROM api_receipts WHERE doc_id = %s", (doc_id,)).fetchone())
        return None if row is None else json.loads(row[0])

    def stored_files(self, doc_ids: list[str]) -> dict[str, set[tuple[str, int]]]:
        """The (sha256, size) of the files each of ``doc_ids`` that has a receipt was
        submitted with (one query)."""
        rows = self.db.run(lambda db: db.execute(
            "SELECT doc_id, record FROM api_receipts WHERE doc_id = ANY(%s)",
            (doc_ids,)).fetchall()) if doc_ids else []
        return {doc_id: {(f["sha256"], f["size"]) for f in json.loads(record)["files"]}
                for doc_id, record in rows}

    def drop(self, doc_id: str) -> None:
        self.db.run(lambda db: db.execute("DELETE FROM api_receipts WHERE doc_id = %s",
                                          (doc_id,)))

    def prune(self) -> int:
        """Delete the receipts of documents the router has; how many."""
        return self.db.run(lambda db: db.execute(PRUNE).rowcount)

    async def prune_forever(self, every: float = PRUNE_EVERY) -> None:
        """``prune`` every ``every`` seconds (the door's background task)."""
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(self.prune)
            except Exception:  # the next round tries again; receipts are only answers
                log.exception("pruning the API's receipts failed")

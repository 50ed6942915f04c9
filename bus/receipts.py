"""The receipt of each document a producer published (through the door or the SDK),
kept before its message is sent, until the router has the document.

``GET /v1/documents/{id}`` and its artefacts answer from the receipt (state
``submitted``) between the ``202`` and the router's first save, and intake takes the
files a receipt lists as stored (the producer stored them; only the bus writes its
database), without asking the object store again. Receipts live in the
bus's database (table ``api_receipts``), on a connection of their own whose commits do
not wait for the disk (a receipt lost in a database crash only makes the document answer
404 until the router has it, and intake ask the store; waiting for each flush capped the
door at the disk's flush rate); intake prunes those whose document has a state.
"""

from __future__ import annotations

import json
from typing import Any

from bus.database import Database
from schemas.envelope import Envelope

KEEP = ("INSERT INTO api_receipts (doc_id, tenant, record) VALUES (%s, %s, %s) "
        "ON CONFLICT (doc_id) DO NOTHING")
PRUNE = ("DELETE FROM api_receipts r USING document_states s WHERE r.doc_id = s.doc_id")


class Receipts:
    """Keep, read, drop and prune the producers' receipts."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def keep(self, env: Envelope) -> None:
        self.keep_many([env])

    def keep_many(self, envs: list[Envelope]) -> None:
        """Keep the receipts of ``envs`` (one round trip)."""
        rows = [(env.id, env.tenant, json.dumps(_record(env))) for env in envs]
        if rows:
            self.db.run(lambda db: db.cursor().executemany(KEEP, rows))

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

    def drop(self, *doc_ids: str) -> None:
        self.db.run(lambda db: db.execute("DELETE FROM api_receipts WHERE doc_id = ANY(%s)",
                                          (list(doc_ids),)))

    def prune(self) -> int:
        """Delete the receipts of documents the router has; how many."""
        return self.db.run(lambda db: db.execute(PRUNE).rowcount)


def _record(env: Envelope) -> dict[str, Any]:
    return {"id": env.id, "tenant": env.tenant, "flow": env.flow, "producer": env.producer,
            "submitted_by": env.submitted_by, "created_at": env.created_at.isoformat(),
            "files": [ref.model_dump(mode="json") for ref in env.files]}

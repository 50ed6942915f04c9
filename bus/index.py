"""SQLite index of the journal: documents' latest state and their event history.

It is derived data: dropping the file and re-reading the journal topic rebuilds it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from schemas.messages import JournalEvent

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL, seq INTEGER NOT NULL,
    tenant TEXT, flow TEXT, type TEXT NOT NULL, state TEXT NOT NULL, step TEXT,
    at TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_doc ON events (doc_id, seq);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, tenant TEXT, flow TEXT, state TEXT NOT NULL, step TEXT,
    seq INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_tenant ON documents (tenant, flow, state, updated_at);
"""


class Index:
    """Thread-safe access to the index file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def add(self, events: Iterable[JournalEvent]) -> int:
        """Index events (each at most once); return how many were new."""
        added = 0
        with self._lock, self._db:
            for ev in events:
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (ev.event_id, ev.doc_id, ev.seq, ev.tenant, ev.flow, ev.type,
                     ev.state.value, ev.step, ev.at.isoformat(), ev.actor,
                     json.dumps(ev.detail, default=str)))
                if cur.rowcount:
                    added += 1
                    self._upsert_document(ev)
        return added

    def _upsert_document(self, ev: JournalEvent) -> None:
        at = ev.at.isoformat()
        self._db.execute(
            """INSERT INTO documents VALUES (?,?,?,?,?,?,?,?)
               ON CONFLICT(doc_id) DO UPDATE SET state=excluded.state, step=excluded.step,
                 seq=excluded.seq, updated_at=excluded.updated_at,
                 tenant=coalesce(excluded.tenant, tenant), flow=coalesce(excluded.flow, flow)
               WHERE excluded.seq > documents.seq""",
            (ev.doc_id, ev.tenant, ev.flow, ev.state.value, ev.step, ev.seq, at, at))

    def events(self, doc_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT event_id, seq, type, state, step, at, actor, detail FROM events "
                "WHERE doc_id = ? ORDER BY seq", (doc_id,)).fetchall()
        keys = ("event_id", "seq", "type", "state", "step", "at", "actor", "detail")
        return [dict(zip(keys, r[:-1], strict=False)) | {"detail": json.loads(r[-1])}
                for r in rows]

    def documents(self, *, tenant: str | None = None, flow: str | None = None,
                  state: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        sql = "SELECT doc_id, tenant, flow, state, step, created_at, updated_at FROM documents"
        where, args = [], []
        for col, val in (("tenant", tenant), ("flow", flow), ("state", state)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY doc_id DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit)).fetchall()
        keys = ("id", "tenant", "flow", "state", "step", "created_at", "updated_at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def close(self) -> None:
        self._db.close()

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

from schemas.messages import DeadLetter, JournalEvent

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
CREATE TABLE IF NOT EXISTS dead_letters (
    dlq_id TEXT PRIMARY KEY, doc_id TEXT, tenant TEXT, flow TEXT, step TEXT,
    error_class TEXT NOT NULL, message TEXT NOT NULL, retryable INTEGER NOT NULL,
    attempts INTEGER NOT NULL, at TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'open',
    status_by TEXT, status_reason TEXT, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_doc ON dead_letters (doc_id);
CREATE TABLE IF NOT EXISTS search_keys (
    doc_id TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (name, value, doc_id)
);
"""
LETTER_STATUS = {"replayed": "replayed", "discarded": "discarded"}


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
                    if not ev.doc_id.startswith(("dlq:", "bus:")):
                        self._upsert_document(ev)
                    self._add_keys(ev)
                    self._letter_status(ev)
        return added

    def _add_keys(self, ev: JournalEvent) -> None:
        """Business keys the router put in the event (personal ones already keyed hashes)."""
        keys = ev.detail.get("keys")
        if not isinstance(keys, dict):
            return
        self._db.executemany(
            "INSERT OR IGNORE INTO search_keys VALUES (?,?,?)",
            [(ev.doc_id, name, str(v)) for name, values in keys.items()
             for v in (values if isinstance(values, list) else [values])])

    def search(self, *, tenant: str | None = None, flow: str | None = None,
               state: str | None = None, since: str | None = None, until: str | None = None,
               keys: dict[str, str] | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Documents matching every filter: ``keys`` are exact (already normalized) values;
        ``since``/``until`` bound the submission date (ISO, ``until`` exclusive)."""
        where, args = [], []
        for col, val in (("tenant", tenant), ("flow", flow), ("state", state)):
            if val is not None:
                where.append(f"d.{col} = ?")
                args.append(val)
        if since is not None:
            where.append("d.created_at >= ?")
            args.append(since)
        if until is not None:
            where.append("d.created_at < ?")
            args.append(until)
        for name, value in (keys or {}).items():
            where.append("d.doc_id IN (SELECT doc_id FROM search_keys WHERE name=? AND value=?)")
            args += [name, value]
        sql = ("SELECT d.doc_id, d.tenant, d.flow, d.state, d.step, d.created_at, d.updated_at "
               "FROM documents d")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY d.created_at DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit)).fetchall()
        keys_of = ("id", "tenant", "flow", "state", "step", "created_at", "updated_at")
        return [dict(zip(keys_of, r, strict=True)) for r in rows]

    def _letter_status(self, ev: JournalEvent) -> None:
        status = LETTER_STATUS.get(ev.type)
        dlq_id = ev.detail.get("dlq_id")
        if status and dlq_id:
            self._db.execute(
                "UPDATE dead_letters SET status=?, status_by=?, status_reason=? WHERE dlq_id=?",
                (status, ev.actor, ev.detail.get("reason", ""), dlq_id))

    def add_dead_letter(self, letter: DeadLetter) -> None:
        """Index a dead letter (at most once)."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO dead_letters (dlq_id, doc_id, tenant, flow, step, "
                "error_class, message, retryable, attempts, at, body) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (letter.dlq_id, letter.doc_id, letter.tenant, letter.flow, letter.step,
                 letter.error.error_class, letter.error.message, int(letter.error.retryable),
                 letter.attempts, letter.last_failure_at.isoformat(),
                 letter.model_dump_json()))

    def dead_letters(self, *, tenant: str | None = None, flow: str | None = None,
                     step: str | None = None, error: str | None = None,
                     since: str | None = None, status: str | None = "open",
                     limit: int = 1000) -> list[dict[str, Any]]:
        """Dead letters matching every filter given, newest first."""
        where, args = [], []
        for col, val in (("tenant", tenant), ("flow", flow), ("step", step),
                         ("error_class", error), ("status", status)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        if since is not None:
            where.append("at >= ?")
            args.append(since)
        sql = ("SELECT dlq_id, doc_id, tenant, flow, step, error_class, message, retryable, "
               "attempts, at, status, status_by, status_reason FROM dead_letters")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY at DESC LIMIT ?"
        keys = ("id", "doc_id", "tenant", "flow", "step", "error_class", "message",
                "retryable", "attempts", "at", "status", "status_by", "status_reason")
        with self._lock:
            rows = self._db.execute(sql, (*args, limit)).fetchall()
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def dead_letter(self, dlq_id: str) -> dict[str, Any] | None:
        """One dead letter: its full body plus its status."""
        with self._lock:
            row = self._db.execute(
                "SELECT body, status, status_by, status_reason FROM dead_letters "
                "WHERE dlq_id = ?", (dlq_id,)).fetchone()
        if row is None:
            return None
        return json.loads(row[0]) | {"status": row[1], "status_by": row[2],
                                     "status_reason": row[3]}

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

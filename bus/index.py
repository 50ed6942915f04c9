"""PostgreSQL index of the journal: documents' latest state and their event history.

It is derived data: an empty database re-filled from the journal topic (or, with
``demat audit reindex``, from the sealed segments) is the same index. Every API node
reads the one database at ``Settings.database``; its schema is the Alembic migrations
of ``bus/index_migrations``, applied when a process first opens the index.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg.types.json import Jsonb

from bus.database import Database
from schemas.messages import DeadLetter, JournalEvent

LETTER_STATUS = {"replayed": "replayed", "discarded": "discarded"}
DOC_COLUMNS = "doc_id, tenant, flow, state, step, created_at, updated_at"
DOC_KEYS = ("id", "tenant", "flow", "state", "step", "created_at", "updated_at")
LETTER_COLUMNS = ("dlq_id, doc_id, tenant, flow, step, error_class, message, retryable::int, "
                  "attempts, at, status, status_by, status_reason")
LETTER_KEYS = ("id", "doc_id", "tenant", "flow", "step", "error_class", "message",
               "retryable", "attempts", "at", "status", "status_by", "status_reason")
T = TypeVar("T")


def _json(value: Any) -> Jsonb:
    return Jsonb(value, dumps=lambda v: json.dumps(v, default=str))


def _iso(row: Iterable[Any]) -> list[Any]:
    """Timestamps as the ISO strings the callers show and compare (UTC)."""
    return [v.isoformat() if isinstance(v, datetime) else v for v in row]


class Index:
    """The index's queries and writes, on one thread-safe connection."""

    def __init__(self, url: str) -> None:
        self._db = Database(url)

    def _run(self, work: Callable[[psycopg.Connection], T]) -> T:
        return self._db.run(work)

    def add(self, events: Iterable[JournalEvent]) -> int:
        """Index events (each at most once); return how many were new."""
        batch = list(events)

        def write(db: psycopg.Connection) -> int:
            added = 0
            with db.transaction():
                for ev in batch:
                    added += self._add_event(db, ev)
            return added

        return self._run(write)

    def _add_event(self, db: psycopg.Connection, ev: JournalEvent) -> int:
        cur = db.execute(
            "INSERT INTO events (event_id, doc_id, seq, tenant, flow, type, state, step, at, "
            "actor, detail) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
            "ON CONFLICT (event_id) DO NOTHING",
            (ev.event_id, ev.doc_id, ev.seq, ev.tenant, ev.flow, ev.type, ev.state.value,
             ev.step, ev.at, ev.actor, _json(ev.detail)))
        if not cur.rowcount:
            return 0
        if not ev.doc_id.startswith(("dlq:", "bus:")):
            self._upsert_document(db, ev)
        self._add_keys(db, ev)
        self._letter_status(db, ev)
        if ev.type == "purged":  # its search keys go with its personal data (bus.purge)
            db.execute("DELETE FROM search_keys WHERE doc_id = %s", (ev.doc_id,))
        return 1

    @staticmethod
    def _add_keys(db: psycopg.Connection, ev: JournalEvent) -> None:
        """Business keys the router put in the event (personal ones already keyed hashes)."""
        keys = ev.detail.get("keys")
        if not isinstance(keys, dict):
            return
        rows = [(ev.doc_id, name, str(v)) for name, values in keys.items()
                for v in (values if isinstance(values, list) else [values])]
        if rows:
            db.cursor().executemany(
                "INSERT INTO search_keys (doc_id, name, value) VALUES (%s,%s,%s) "
                "ON CONFLICT DO NOTHING", rows)

    @staticmethod
    def _upsert_document(db: psycopg.Connection, ev: JournalEvent) -> None:
        db.execute(
            """INSERT INTO documents AS d (doc_id, tenant, flow, state, step, seq, created_at,
                   updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)
               ON CONFLICT (doc_id) DO UPDATE SET state=excluded.state, step=excluded.step,
                 seq=excluded.seq, updated_at=excluded.updated_at,
                 tenant=coalesce(excluded.tenant, d.tenant), flow=coalesce(excluded.flow, d.flow)
               WHERE excluded.seq > d.seq""",
            (ev.doc_id, ev.tenant, ev.flow, ev.state.value, ev.step, ev.seq, ev.at, ev.at))

    @staticmethod
    def _letter_status(db: psycopg.Connection, ev: JournalEvent) -> None:
        status = LETTER_STATUS.get(ev.type)
        dlq_id = ev.detail.get("dlq_id")
        if status and dlq_id:
            db.execute(
                "UPDATE dead_letters SET status=%s, status_by=%s, status_reason=%s "
                "WHERE dlq_id=%s", (status, ev.actor, ev.detail.get("reason", ""), dlq_id))

    def search(self, *, tenant: str | None = None, flow: str | None = None,
               state: str | None = None, since: str | None = None, until: str | None = None,
               keys: dict[str, str] | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Documents matching every filter: ``keys`` are exact (already normalized) values;
        ``since``/``until`` bound the submission date (ISO, ``until`` exclusive)."""
        where, args = _equal(("d.tenant", tenant), ("d.flow", flow), ("d.state", state))
        if since is not None:
            where.append("d.created_at >= %s::timestamptz")
            args.append(since)
        if until is not None:
            where.append("d.created_at < %s::timestamptz")
            args.append(until)
        for name, value in (keys or {}).items():
            where.append("EXISTS (SELECT 1 FROM search_keys k WHERE k.name = %s "
                         "AND k.value = %s AND k.doc_id = d.doc_id)")
            args += [name, value]
        sql = f"SELECT {', '.join('d.' + c for c in DOC_COLUMNS.split(', '))} FROM documents d"
        return self._select(sql, where, "d.created_at DESC", args, limit, DOC_KEYS)

    def _select(self, sql: str, where: list[str], order: str, args: list[Any], limit: int,
                keys: tuple[str, ...]) -> list[dict[str, Any]]:
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {order} LIMIT %s"
        rows = self._run(lambda db: db.execute(sql, (*args, limit)).fetchall())
        return [dict(zip(keys, _iso(r), strict=True)) for r in rows]

    def add_dead_letter(self, letter: DeadLetter) -> None:
        """Index a dead letter (at most once)."""
        self._run(lambda db: db.execute(
            "INSERT INTO dead_letters (dlq_id, doc_id, tenant, flow, step, error_class, "
            "message, retryable, attempts, at, body) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
            "ON CONFLICT (dlq_id) DO NOTHING",
            (letter.dlq_id, letter.doc_id, letter.tenant, letter.flow, letter.step,
             letter.error.error_class, _no_nul(letter.error.message), letter.error.retryable,
             letter.attempts, letter.last_failure_at,
             Jsonb(json.loads(_no_nul(letter.model_dump_json()))))))

    def dead_letters(self, *, tenant: str | None = None, flow: str | None = None,
                     step: str | None = None, error: str | None = None,
                     since: str | None = None, status: str | None = "open",
                     limit: int = 1000, within: list[str | None] | None = None
                     ) -> list[dict[str, Any]]:
        """Dead letters matching every filter given, newest first; ``within``: only those
        of these tenants (``None`` in it: the letters of no tenant too)."""
        where, args = _equal(("tenant", tenant), ("flow", flow), ("step", step),
                             ("error_class", error), ("status", status))
        if within is not None:
            where.append("(tenant = ANY(%s)" + (" OR tenant IS NULL)" if None in within
                                                 else ")"))
            args.append([t for t in within if t is not None])
        if since is not None:
            where.append("at >= %s::timestamptz")
            args.append(since)
        return self._select(f"SELECT {LETTER_COLUMNS} FROM dead_letters", where, "at DESC",
                            args, limit, LETTER_KEYS)

    def dead_letter(self, dlq_id: str) -> dict[str, Any] | None:
        """One dead letter: its full body plus its status."""
        row = self._run(lambda db: db.execute(
            "SELECT body, status, status_by, status_reason FROM dead_letters "
            "WHERE dlq_id = %s", (dlq_id,)).fetchone())
        if row is None:
            return None
        return row[0] | {"status": row[1], "status_by": row[2], "status_reason": row[3]}

    def events(self, doc_id: str) -> list[dict[str, Any]]:
        """A document's journal events, in order."""
        rows = self._run(lambda db: db.execute(
            "SELECT event_id, seq, type, state, step, at, actor, detail FROM events "
            "WHERE doc_id = %s ORDER BY seq", (doc_id,)).fetchall())
        keys = ("event_id", "seq", "type", "state", "step", "at", "actor", "detail")
        return [dict(zip(keys, _iso(r), strict=True)) for r in rows]

    def documents(self, *, tenant: str | None = None, flow: str | None = None,
                  state: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Documents' latest state, newest identifiers first."""
        where, args = _equal(("tenant", tenant), ("flow", flow), ("state", state))
        return self._select(f"SELECT {DOC_COLUMNS} FROM documents", where, "doc_id DESC",
                            args, limit, DOC_KEYS)

    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """The rows of a read-only query (the console's dashboard aggregates)."""
        return self._run(lambda db: db.execute(sql, args).fetchall())

    def close(self) -> None:
        self._db.close()


def _equal(*filters: tuple[str, str | None]) -> tuple[list[str], list[Any]]:
    """``column = value`` conditions for the filters given (``None``: no filter)."""
    given = [(col, val) for col, val in filters if val is not None]
    return [f"{col} = %s" for col, _ in given], [val for _, val in given]


def _no_nul(text: str) -> str:
    """PostgreSQL text holds no NUL character (JSON's ``\\u0000`` neither)."""
    return text.replace("\x00", "\ufffd").replace("\\u0000", "\\ufffd")

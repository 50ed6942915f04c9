"""The PostgreSQL index on a real server (pgserver): migrations from an empty database,
concurrent starts, idempotent writes, the queries the CLI and API use."""

from __future__ import annotations

import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from bus import index_migrations
from bus.dev.embedded import EmbeddedStack, pid_alive, stop_process
from bus.index import Index
from schemas.messages import DeadLetter, DocState, ErrorInfo, JournalEvent

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _event(doc: str, seq: int, state: DocState = DocState.RUNNING, **kw) -> JournalEvent:
    return JournalEvent(event_id=f"{doc}-{seq}", doc_id=doc, seq=seq, tenant="216900910",
                        flow="document", type=kw.pop("type", "step-done"), state=state,
                        at=T0 + timedelta(minutes=seq), **kw)


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        return {r[0] for r in rows}


def test_migrations_apply_to_an_empty_database_once(pg_url: str) -> None:
    assert index_migrations.current(pg_url) is None and _tables(pg_url) == set()
    Index(pg_url).close()
    assert index_migrations.current(pg_url) == index_migrations.HEAD == index_migrations.head()
    assert _tables(pg_url) == {"alembic_version", "events", "documents", "dead_letters",
                               "search_keys", "document_states",
                               "idempotency_keys", "api_receipts", "identity_users",
                               "identity_tokens", "pastell_entities", "pastell_documents",
                               "pastell_idempotency"}
    index_migrations.upgrade(pg_url)  # again: nothing to do, nothing broken
    assert index_migrations.current(pg_url) == index_migrations.HEAD


def test_concurrent_starts_migrate_once(pg_url: str) -> None:
    code = "import sys; from bus import index_migrations; index_migrations.upgrade(sys.argv[1])"
    procs = [subprocess.Popen([sys.executable, "-c", code, pg_url], cwd=ROOT,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (index_migrations.HEAD,)]


def test_events_are_indexed_once_and_documents_keep_their_latest_state(pg_url: str) -> None:
    index = Index(pg_url)
    first = [_event("d1", 1, DocState.RECEIVED, type="submitted",
                    detail={"keys": {"author": ["h1", "h2"], "category": "note"}, "n": 1}),
             _event("d1", 3, DocState.COMPLETED, type="completed")]
    assert index.add(first) == 2
    assert index.add(first) == 0  # at-least-once delivery: a replay adds nothing
    assert index.add([_event("d1", 2)]) == 1  # late, older event: history yes, state no
    [doc] = index.documents(tenant="216900910")
    assert doc == {"id": "d1", "tenant": "216900910", "flow": "document",
                   "state": "completed", "step": None,
                   "created_at": (T0 + timedelta(minutes=1)).isoformat(),
                   "updated_at": (T0 + timedelta(minutes=3)).isoformat()}
    events = index.events("d1")
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert events[0]["detail"] == {"keys": {"author": ["h1", "h2"], "category": "note"},
                                   "n": 1}
    assert events[0]["at"] == (T0 + timedelta(minutes=1)).isoformat()
    assert index.documents(state="received") == []


def test_search_by_keys_and_dates(pg_url: str) -> None:
    index = Index(pg_url)
    index.add([_event("a", 1, detail={"keys": {"author": "h1", "category": "x"}}),
               _event("b", 5, detail={"keys": {"author": "h1", "category": "y"}}),
               _event("dlq:z", 1, detail={"keys": {"author": "h1"}})])
    assert [r["id"] for r in index.search(keys={"author": "h1"})] == ["b", "a"]
    assert [r["id"] for r in index.search(keys={"author": "h1", "category": "x"})] == ["a"]
    assert [r["id"] for r in index.search(since="2026-03-01T09:33:00+00:00")] == ["b"]
    assert [r["id"] for r in index.search(until="2026-03-01T09:33:00+00:00")] == ["a"]
    assert index.search(since="2026-03-02") == [] and index.search(flow="other") == []
    assert [r["id"] for r in index.search(keys={"author": "h1"}, limit=1)] == ["b"]


def test_dead_letters_and_their_status(pg_url: str) -> None:
    index = Index(pg_url)
    letter = DeadLetter(doc_id="d9", tenant="216900910", flow="document", step="ged",
                        attempts=3, error=ErrorInfo(error_class="Timeout", retryable=True,
                                                    message="no answer\x00 from GED"))
    index.add_dead_letter(letter)
    index.add_dead_letter(letter)
    [row] = index.dead_letters(step="ged")
    assert (row["id"], row["retryable"], row["attempts"], row["status"]) == (
        letter.dlq_id, 1, 3, "open")
    assert row["at"] == letter.last_failure_at.isoformat()
    index.add([_event("dlq:x", 1, type="replayed", actor="alice",
                      detail={"dlq_id": letter.dlq_id, "reason": "GED back"})])
    assert index.dead_letters() == []
    full = index.dead_letter(letter.dlq_id)
    assert full["error"]["error_class"] == "Timeout" and full["doc_id"] == "d9"
    assert (full["status"], full["status_by"], full["status_reason"]) == (
        "replayed", "alice", "GED back")
    assert index.dead_letter("nope") is None


def test_dead_letters_within_tenants(pg_url: str) -> None:
    index = Index(pg_url)
    error = ErrorInfo(error_class="PermanentError", message="refused")
    letters = [DeadLetter(doc_id="a1", tenant="216900910", error=error),
               DeadLetter(doc_id="b1", tenant="214502494", error=error),
               DeadLetter(raw="AAAA", error=error)]  # undecodable: no tenant
    for letter in letters:
        index.add_dead_letter(letter)

    def docs(within: list[str | None] | None) -> set[str | None]:
        return {r["doc_id"] for r in index.dead_letters(within=within)}

    assert docs(["216900910"]) == {"a1"}
    assert docs(["216900910", None]) == {"a1", None}
    assert docs([]) == set() and docs(None) == {"a1", "b1", None}
    assert docs(["214502494"]) == {"b1"}


def test_threads_share_an_index_and_a_dropped_connection_is_renewed(pg_url: str) -> None:
    index = Index(pg_url)
    with ThreadPoolExecutor(8) as pool:
        added = list(pool.map(lambda i: index.add([_event(f"t{i}", 1), _event(f"t{i}", 2)]),
                              range(40)))
    assert added == [2] * 40 and len(index.documents()) == 40
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    assert len(index.events("t7")) == 2


def test_embedded_database_lives_in_the_var_dir_and_survives_a_restart(tmp_path: Path) -> None:
    stack = EmbeddedStack(tmp_path)
    stack.start_database()
    assert (tmp_path / "pg" / "PG_VERSION").exists()
    Index(stack.info["database"]).add([_event("kept", 1)])
    stop_process(stack.info["pids"]["postgres"], sig=signal.SIGINT)
    assert not pid_alive(stack.info["pids"]["postgres"])
    stack.start_database()
    try:
        assert [d["id"] for d in Index(stack.info["database"]).documents()] == ["kept"]
    finally:
        stop_process(stack.info["pids"]["postgres"], sig=signal.SIGINT)

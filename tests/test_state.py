"""Document states in PostgreSQL: the router's cache (a loaded state is the router's to
change, the cache is not), batched reads and writes, and states an older bus left in the
object store."""

from __future__ import annotations

import asyncio

import psycopg

from bus.database import Database
from bus.state import StateStore, state_key
from schemas.envelope import Envelope, FileRef
from schemas.messages import DocState, DocumentState


class _Records:
    """Just the record calls of ``ObjectStore``, in memory, counting reads."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.reads = 0

    def get_record(self, key: str) -> bytes | None:
        self.reads += 1
        return self.data.get(key)

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.data if k.startswith(prefix))


class _Counting(Database):
    """A database connection counting the statements it runs."""

    runs = 0

    def run(self, work):  # type: ignore[no-untyped-def]
        self.runs += 1
        return super().run(work)


def _state(title: str = "t") -> DocumentState:
    env = Envelope(tenant="216900910", flow="document", metadata={"title": title},
                   files=[FileRef(sha256="b" * 64, size=3, media_type="text/plain", name="a")])
    return DocumentState(doc_id=env.id, envelope=env, state=DocState.RUNNING)


def test_changes_to_a_loaded_state_reach_neither_cache_nor_database_until_saved(
        pg_url: str) -> None:
    db = _Counting(pg_url)
    states = StateStore(db)
    state = _state()
    asyncio.run(states.save(state))
    runs = db.runs
    loaded = asyncio.run(states.load(state.doc_id))
    assert loaded == state and loaded is not state and db.runs == runs  # from the cache
    loaded.state = DocState.ERROR
    loaded.record("validate").attempts = 3
    again = asyncio.run(states.load(state.doc_id))
    assert again.state == DocState.RUNNING and again.steps == state.steps
    asyncio.run(states.save(loaded))
    assert asyncio.run(states.load(state.doc_id)).state == DocState.ERROR
    states.forget()
    from_db = asyncio.run(states.load(state.doc_id))
    assert db.runs == runs + 2 and from_db == loaded
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT tenant, state FROM document_states WHERE doc_id = %s",
                           (state.doc_id,)).fetchone()
    assert row == ("216900910", "error")


def test_a_batch_is_one_read_and_one_write(pg_url: str) -> None:
    db = _Counting(pg_url)
    states = StateStore(db, cache_size=0)
    batch = [_state(f"d{i}") for i in range(50)]
    asyncio.run(states.save_many(batch))
    assert db.runs == 1
    found = asyncio.run(states.load_many([s.doc_id for s in batch] + ["unknown"],
                                         new={"unknown"}))
    assert db.runs == 2 and found == {s.doc_id: s for s in batch}
    assert StateStore(Database(pg_url)).doc_ids() == sorted(s.doc_id for s in batch)


def test_a_state_an_older_bus_left_in_the_object_store_is_read_until_saved_again(
        pg_url: str) -> None:
    older, records = _state(), _Records()
    records.data[state_key(older.doc_id)] = older.model_dump_json().encode()
    states = StateStore(Database(pg_url), records, cache_size=0)  # type: ignore[arg-type]
    assert asyncio.run(states.load(older.doc_id)) == older
    assert asyncio.run(states.load_many([older.doc_id], new={older.doc_id})) == {}
    assert states.doc_ids() == [older.doc_id]
    moved = older.model_copy(update={"state": DocState.COMPLETED})
    asyncio.run(states.save(moved))
    reads = records.reads
    assert asyncio.run(states.load(older.doc_id)) == moved and records.reads == reads
    assert states.doc_ids() == [older.doc_id]  # once, from the database

"""A process reads each journal segment once: ``SegmentReader`` lists only what was
written since it last looked, finds a document's lines where it noted them (from the
latest segments kept in memory, or by a ranged GET), reads the older segments once when
asked about a document submitted before what it indexes, and hands back to a full scan
what lies before all it may hold. On the real object store, in a bucket of the test's own."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

import pytest

from bus.audit.events import (
    JournalIncomplete,
    SegmentReader,
    complete_journal,
    document_events,
    reader_of,
)
from bus.audit.store import JournalStore, segment_key
from bus.settings import Settings
from schemas.messages import JournalEvent

pytestmark = pytest.mark.stack


def _journal(settings: Settings) -> JournalStore:
    journal = JournalStore(settings.model_copy(update={"bucket": f"rd{uuid.uuid4().hex[:10]}"}))
    journal.ensure()
    return journal


def _events(doc_id: str, seqs: range) -> list[JournalEvent]:
    return [JournalEvent(event_id=f"{doc_id}-{n}", doc_id=doc_id, seq=n, tenant="216900910",
                         flow="document", type="step-done", state="running",
                         detail={"n": n, "pad": "x" * 300}) for n in seqs]


def _write(journal: JournalStore, n: int, events: list[JournalEvent]) -> None:
    journal.put(segment_key(n), b"".join(e.model_dump_json().encode() + b"\n" for e in events))


def _counting(journal: JournalStore, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    calls: Counter[str] = Counter()
    for name in ("get_object", "list_objects"):
        real = getattr(journal.client, name)

        def spy(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            key = "ranged" if kwargs.get("length") else _name
            calls[key] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(journal.client, name, spy)
    return calls


def test_each_segment_is_read_once_and_new_ones_are_found(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = _journal(settings)
    a, b = "01docA", "01docB"
    _write(journal, 1, _events(a, range(1, 3)) + _events(b, range(1, 2)))
    _write(journal, 2, _events(b, range(2, 4)) + _events(a, range(3, 4)))
    reader, since = SegmentReader(journal), time.time()
    calls = _counting(journal, monkeypatch)
    assert [e.seq for e in reader.events(a, since)] == [1, 2, 3]
    assert [e.seq for e in reader.events(b, since)] == [1, 2, 3]
    assert calls == {"list_objects": 2, "get_object": 2}  # two listings, each segment once
    _write(journal, 3, _events(a, range(4, 5)))
    assert [e.seq for e in reader.events(a, since)] == [1, 2, 3, 4]
    assert calls["get_object"] == 3  # only the new segment


def test_older_lines_come_by_ranged_gets_once_their_segment_is_not_kept(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = _journal(settings)
    doc = "01docC"
    for n in range(1, 4):
        _write(journal, n, _events("01other", range(10 * n, 10 * n + 5))
               + _events(doc, range(n, n + 1)))
    reader = SegmentReader(journal, keep_bytes=1)  # keeps the latest segment only
    since = time.time()
    assert len(reader.events(doc, since)) == 3
    calls = _counting(journal, monkeypatch)
    assert [e.seq for e in reader.events(doc, since)] == [1, 2, 3]
    assert calls["ranged"] == 2 and calls["get_object"] == 0  # segments 1, 2: ranged


def test_what_lies_before_all_the_reader_may_hold_is_scanned_in_full(
        settings: Settings) -> None:
    journal = _journal(settings)
    doc = "01docD"
    for n in range(1, 4):
        _write(journal, n, _events(doc, range(2 * n - 1, 2 * n + 1)))
    reader = SegmentReader(journal, max_lines=3)  # forgets the oldest segments' lines
    since = time.time()
    assert reader.events(doc, since) is None  # it forgot the oldest: not known
    assert reader.events(doc, since - 7200) is None
    every = list(range(1, 7))
    assert [e.seq for e in document_events(journal, doc, since)] == every  # this process's
    assert [e.seq for e in reader_of(journal).events(doc, since - 7200) or []] == every
    assert [e.seq for e in document_events(journal, doc, since - 7200)] == every


def test_a_document_submitted_before_the_first_one_asked_about_is_back_filled_once(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = _journal(settings)
    early, late = "01docG", "01docH"
    _write(journal, 1, _events(early, range(1, 3)))
    reader = SegmentReader(journal)
    now = time.time()
    assert reader.events(late, now + 7200) == []  # indexes from an hour after now only
    calls = _counting(journal, monkeypatch)
    assert [e.seq for e in reader.events(early, now)] == [1, 2]  # older: read once
    assert calls == {"list_objects": 2, "get_object": 1}  # the back-fill, then a look
    assert [e.seq for e in reader.events(early, now, look=False)] == [1, 2]
    assert calls["get_object"] == 1  # not read again
    _write(journal, 2, _events(late, range(1, 2)))
    assert [e.seq for e in reader.events(late, now + 7200)] == [1]


def test_a_complete_journal_already_read_is_not_listed_again(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = _journal(settings)
    a, b = "01docE", "01docF"
    _write(journal, 1, _events(a, range(1, 3)) + _events(b, range(1, 3)))
    since = time.time()
    assert len(complete_journal(journal, a, since, [])) == 2  # lists, reads the segment
    calls = _counting(journal, monkeypatch)
    assert len(complete_journal(journal, b, since, [])) == 2
    assert calls == {}  # all there already: no listing, no read
    _write(journal, 2, _events(b, range(3, 4)))
    with pytest.raises(JournalIncomplete):  # lacks a step-done: looks again, still lacks it
        complete_journal(journal, b, since, ["archive"])
    assert calls["list_objects"] == 1 and calls["get_object"] == 1  # the new segment

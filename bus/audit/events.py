"""A document's journal read back from the journal segments the sealer wrote.

Steps that need a document's history (the archive step puts it in the SIP) read it
here, never from the router's state store or the indexer's database. The sealer
writes a segment per batch of the journal topic, so the latest events of a document
may not be in a segment yet: ``complete_journal`` then raises ``JournalIncomplete``, a
retryable error, and the router retries the step (with its back-off) until they are.

Segments are written once and never changed, so a process reads each one once
(``SegmentReader``): it lists only the segments written since it last looked, notes
where each document's lines are, keeps the latest segments' bytes, and reads a
document's older lines with ranged GETs. Reading every segment for every document
made a payroll burst quadratic in its size.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from weakref import WeakKeyDictionary

from pydantic import ValidationError

from bus.audit.sealer import segment_lines
from bus.audit.store import SEGMENTS, JournalStore
from connectors.errors import TransientError
from schemas.messages import JournalEvent

IO_THREADS = 8  # the store is remote: segments are read in parallel
SKEW_S = 3600.0  # segments written up to this long before the submission are read too
KEEP_BYTES = 32 * 1024 * 1024  # a reader keeps the latest segments' bytes up to this
MAX_LINES = 400_000  # and the positions of at most this many lines (some 30 MB)
_READERS: WeakKeyDictionary[Any, dict[str, SegmentReader]] = WeakKeyDictionary()
_READERS_LOCK = threading.Lock()


class JournalIncomplete(TransientError):
    """The segments do not hold the document's journal (yet): retry later."""


def document_events(journal: JournalStore, doc_id: str,
                    since: float | None = None) -> list[JournalEvent]:
    """The events of ``doc_id`` in the segments, by ``seq`` (a segment re-written after a
    sealer crash repeats lines: kept once); ``since`` (epoch seconds, the document's
    submission) skips segments last written well before it. This process's reader of
    the bucket answers when it indexes that far back; else every segment is read."""
    found = reader_of(journal).events(doc_id, since)
    return found if found is not None else _scanned(journal, doc_id, since)


def _scanned(journal: JournalStore, doc_id: str, since: float | None) -> list[JournalEvent]:
    """The events of ``doc_id``, from every segment written since ``since`` - SKEW_S."""
    times = journal.objects.list_times(SEGMENTS)
    keys = sorted(k for k, at in times.items()
                  if k.endswith(".jsonl") and (since is None or at >= since - SKEW_S))
    with ThreadPoolExecutor(IO_THREADS) as pool:
        segments = list(pool.map(journal.get, keys))
    mark = doc_id.encode()
    return _decoded(doc_id, [line for data in segments for line in segment_lines(data or b"")
                             if mark in line])


def _decoded(doc_id: str, lines: list[bytes]) -> list[JournalEvent]:
    """The events of ``doc_id`` among ``lines``, once each, by ``seq``."""
    events: dict[int, JournalEvent] = {}
    for line in lines:
        if (event := _event(line)) is not None and event.doc_id == doc_id:
            events.setdefault(event.seq, event)
    return [events[seq] for seq in sorted(events)]


def reader_of(journal: JournalStore) -> SegmentReader:
    """This process's reader of ``journal``'s bucket (one per store client and bucket)."""
    with _READERS_LOCK:
        readers = _READERS.setdefault(journal.client, {})
        if journal.bucket not in readers:
            readers[journal.bucket] = SegmentReader(journal)
        return readers[journal.bucket]


def _doc_of(line: bytes) -> str | None:
    try:
        doc_id = json.loads(line).get("doc_id")
    except (ValueError, AttributeError):
        return None
    return doc_id if isinstance(doc_id, str) else None


def complete_journal(journal: JournalStore, doc_id: str, since: float | None,
                     done_steps: Iterable[str]) -> list[JournalEvent]:
    """The document's events, which must run from its first without a gap and include
    the ``step-done`` of every step in ``done_steps``; else ``JournalIncomplete``."""
    done = list(done_steps)
    reader = reader_of(journal)
    events = reader.events(doc_id, since, look=False)  # what this process has read
    gap = "not read yet" if events is None else journal_gap(events, done)
    if gap is not None:
        events = document_events(journal, doc_id, since)
        gap = journal_gap(events, done)
    if gap is not None:
        raise JournalIncomplete(f"document {doc_id}: its journal is not in the journal "
                                f"segments yet ({gap}); retried until the sealer writes it")
    return events


def journal_gap(events: list[JournalEvent], done_steps: Iterable[str]) -> str | None:
    """What the events lack to be the document's journal so far (``None``: nothing)."""
    if not events:
        return "no event"
    for expected, event in enumerate(events, start=1):
        if event.seq != expected:
            return f"event {expected} missing"
    done = {e.step for e in events if e.type == "step-done"}
    lacking = sorted(set(done_steps) - done)
    return f"no step-done event for {', '.join(lacking)}" if lacking else None


def _event(line: bytes) -> JournalEvent | None:
    try:
        return JournalEvent.model_validate_json(line)
    except ValidationError:
        return None  # not an event: `demat audit verify` reports such lines


class SegmentReader:
    """Where each document's lines are in the segments of one journal bucket, learnt by
    reading each segment once from ``floor`` (the earliest submission asked about, less
    ``SKEW_S``) on; the bytes of the latest segments are kept (``keep_bytes``), the
    positions of at most ``max_lines`` lines (the oldest segments' are forgotten first:
    the floor rises past them). Asked about a document submitted before its floor, it
    reads the older segments once and lowers the floor. Thread-safe."""

    def __init__(self, journal: JournalStore, keep_bytes: int = KEEP_BYTES,
                 max_lines: int = MAX_LINES) -> None:
        self.journal, self.keep_bytes, self.max_lines = journal, keep_bytes, max_lines
        self.floor: float | None = None  # segments written before it are not indexed
        self._lock = threading.Lock()
        self._last: str | None = None  # the newest segment key read
        # segment key -> (when it was written, doc id -> (offset, length) of its lines)
        self._segments: OrderedDict[str, tuple[float, dict[str, list[tuple[int, int]]]]] = \
            OrderedDict()
        self._lines = 0
        self._recent: OrderedDict[str, bytes] = OrderedDict()
        self._recent_bytes = 0

    def events(self, doc_id: str, since: float | None, look: bool = True
               ) -> list[JournalEvent] | None:
        """``doc_id``'s events from the segments (``look``: list those written since the
        last look first), or ``None`` when they may lie before what this reader indexes
        (the caller reads every segment instead)."""
        with self._lock:
            if since is None:
                return None
            if self.floor is not None and since - SKEW_S < self.floor:
                self._back_fill(since - SKEW_S)
            if look or self.floor is None:
                self._catch_up(since - SKEW_S)
            if since - SKEW_S < (self.floor or 0.0):  # more lines than it may hold
                return None
            where = [(key, spots[doc_id]) for key, (_, spots) in self._segments.items()
                     if doc_id in spots]
        return _decoded(doc_id, [line for key, spots in where
                                 for line in self._lines_at(key, spots)])

    def _catch_up(self, floor: float) -> None:
        """Read the segments written since the last look (from ``floor`` the first time)."""
        if self.floor is None:
            self.floor = floor
        times = self.journal.objects.list_times(SEGMENTS, after=self._last)
        for key in sorted(k for k, at in times.items()
                          if k.endswith(".jsonl") and at >= self.floor):
            self._index(key, times[key], self.journal.get(key) or b"")
        if times:
            self._last = max(self._last or "", max(times))

    def _back_fill(self, floor: float) -> None:
        """Index the segments written between ``floor`` and the current floor (a document
        submitted before the first one this process asked about), oldest first."""
        times = self.journal.objects.list_times(SEGMENTS)
        self.floor = floor
        for key in sorted(k for k, at in times.items() if k.endswith(".jsonl")
                          and at >= floor and k not in self._segments):
            self._index(key, times[key], self.journal.get(key) or b"", older=True)
        self._segments = OrderedDict(sorted(self._segments.items()))
        self._recent = OrderedDict(sorted(self._recent.items()))
        self._evict()

    def _index(self, key: str, written: float, data: bytes, older: bool = False) -> None:
        """Note where each document's lines are in segment ``key`` and keep its bytes
        (``older``: read while back-filling, nothing is forgotten until it ends)."""
        spots: dict[str, list[tuple[int, int]]] = {}
        offset = 0
        for line in segment_lines(data):
            doc_id = _doc_of(line)
            if doc_id is not None:
                spots.setdefault(doc_id, []).append((offset, len(line)))
            offset += len(line) + 1
        self._segments[key] = (written, spots)
        self._lines += sum(len(v) for v in spots.values())
        self._remember(key, data, trim=not older)
        if not older:
            self._evict()

    def _evict(self) -> None:
        """Forget the oldest segments' lines beyond ``max_lines`` (the floor rises) and
        their bytes beyond ``keep_bytes``."""
        while self._lines > self.max_lines and len(self._segments) > 1:
            _, (at, dropped) = self._segments.popitem(last=False)
            self._lines -= sum(len(v) for v in dropped.values())
            self.floor = max(self.floor or 0.0, at + 0.001)  # not indexed any more
        self._trim()

    def _remember(self, key: str, data: bytes, trim: bool = True) -> None:
        self._recent[key] = data
        self._recent_bytes += len(data)
        if trim:
            self._trim()

    def _trim(self) -> None:
        while self._recent_bytes > self.keep_bytes and len(self._recent) > 1:
            _, old = self._recent.popitem(last=False)
            self._recent_bytes -= len(old)

    def _lines_at(self, key: str, spots: list[tuple[int, int]]) -> list[bytes]:
        """The lines at ``spots`` of segment ``key``: from memory, else one ranged GET."""
        with self._lock:
            data = self._recent.get(key)
        if data is None:
            start = spots[0][0]
            end = spots[-1][0] + spots[-1][1]
            chunk = self.journal.get(key, start, end - start) or b""
            return [chunk[off - start:off - start + n] for off, n in spots]
        return [data[off:off + n] for off, n in spots]

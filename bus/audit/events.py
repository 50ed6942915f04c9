"""A document's journal read back from the journal segments the sealer wrote.

Steps that need a document's history (the archive step puts it in the SIP) read it
here, never from the router's state store or the indexer's database. The sealer
writes a segment per batch of the journal topic, so the latest events of a document
may not be in a segment yet: ``complete_journal`` then raises ``JournalIncomplete``, a
retryable error, and the router retries the step (with its back-off) until they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from pydantic import ValidationError

from bus.audit.sealer import segment_lines
from bus.audit.store import SEGMENTS, JournalStore
from connectors.errors import TransientError
from schemas.messages import JournalEvent

IO_THREADS = 8  # the store is remote: segments are read in parallel
SKEW_S = 3600.0  # segments written up to this long before the submission are read too


class JournalIncomplete(TransientError):
    """The segments do not hold the document's journal (yet): retry later."""


def document_events(journal: JournalStore, doc_id: str,
                    since: float | None = None) -> list[JournalEvent]:
    """The events of ``doc_id`` in the segments, by ``seq`` (a segment re-written after a
    sealer crash repeats lines: kept once); ``since`` (epoch seconds, the document's
    submission) skips segments last written well before it."""
    times = journal.objects.list_times(SEGMENTS)
    keys = sorted(k for k, at in times.items()
                  if k.endswith(".jsonl") and (since is None or at >= since - SKEW_S))
    with ThreadPoolExecutor(IO_THREADS) as pool:
        segments = list(pool.map(journal.get, keys))
    mark = doc_id.encode()
    events: dict[int, JournalEvent] = {}
    for data in segments:
        for line in segment_lines(data or b""):
            if mark in line and (event := _event(line)) is not None and event.doc_id == doc_id:
                events.setdefault(event.seq, event)
    return [events[seq] for seq in sorted(events)]


def complete_journal(journal: JournalStore, doc_id: str, since: float | None,
                     done_steps: Iterable[str]) -> list[JournalEvent]:
    """The document's events, which must run from its first without a gap and include
    the ``step-done`` of every step in ``done_steps``; else ``JournalIncomplete``."""
    events = document_events(journal, doc_id, since)
    gap = journal_gap(events, done_steps)
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

"""Journal records: one a document and router batch, an event a line, each line the
event's JSON as the sealer writes it to the segments; older one-event records still read."""

from __future__ import annotations

from bus.broker import (
    EVENT_HEADER,
    RECORD_EVENTS,
    TENANT_HEADER,
    encode,
    journal_lines,
    journal_records,
)
from schemas.messages import JournalEvent


def _event(seq: int, type_: str = "step-done") -> JournalEvent:
    return JournalEvent(event_id=f"ev-{seq}", doc_id="01doc", seq=seq, tenant="216900910",
                        flow="document", type=type_, state="running",
                        detail={"note": "a\nb"})  # a newline in a value stays escaped


def test_a_documents_events_make_one_record_of_lines_as_sealed() -> None:
    events = [_event(1, "accepted"), _event(2), _event(3), _event(4, "completed")]
    [(body, headers)] = journal_records(events)
    assert journal_lines(body) == [encode(e) for e in events]
    assert headers == {TENANT_HEADER: "216900910",
                       EVENT_HEADER: "accepted,step-done,completed"}
    assert [JournalEvent.model_validate_json(line).seq for line in journal_lines(body)] \
        == [1, 2, 3, 4]


def test_many_events_are_split_and_an_older_record_reads_as_one_line() -> None:
    events = [_event(n) for n in range(1, 2 * RECORD_EVENTS + 2)]
    records = journal_records(events)
    assert [len(journal_lines(body)) for body, _ in records] == [RECORD_EVENTS,
                                                                 RECORD_EVENTS, 1]
    assert [line for body, _ in records for line in journal_lines(body)] == \
        [encode(e) for e in events]
    assert journal_lines(encode(events[0])) == [encode(events[0])]
    assert journal_records([]) == []

"""Intake takes the files a door's receipt lists as stored, and checks every other file
in the object store (a message published to Kafka by anyone else is not vouched for)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from bus.runtime import Runtime
from bus.services.intake import admit
from bus.settings import Settings
from schemas.envelope import Envelope, FileRef, FileRole
from schemas.messages import Accepted, Refused, SubmitMessage
from workers.common.demo import minimal_pdf

pytestmark = pytest.mark.stack
CITY = "216900910"


def _submission(runtime: Runtime, *files: FileRef) -> SubmitMessage:
    env = Envelope(id=f"01receipt-{uuid.uuid4().hex[:12]}", tenant=CITY, flow="document",
                   metadata={"title": "courrier"}, producer="api", files=list(files),
                   created_at=datetime.now(UTC))
    return SubmitMessage(envelope=env)


def _stored_pdf(runtime: Runtime) -> FileRef:
    return runtime.store.put_bytes(CITY, minimal_pdf(f"receipt {uuid.uuid4()}"),
                                   name="courrier.pdf")


async def test_a_file_the_receipt_lists_is_not_asked_of_the_store_again(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = Runtime(settings)
    sub = _submission(runtime, _stored_pdf(runtime))
    runtime.receipts.keep(sub.envelope)
    stored = runtime.receipts.stored_files([sub.envelope.id, "01no-receipt"])
    assert list(stored) == [sub.envelope.id]

    def asked(*_: Any) -> None:
        raise AssertionError("intake asked the object store for a file the receipt lists")

    monkeypatch.setattr(runtime.store, "stat_file", asked)
    verdict = await admit(runtime, sub, stored[sub.envelope.id])
    assert isinstance(verdict, Accepted), verdict


async def test_a_file_the_receipt_does_not_list_is_checked_and_refused_if_absent(
        settings: Settings) -> None:
    runtime = Runtime(settings)
    listed = _stored_pdf(runtime)
    absent = FileRef(sha256=uuid.uuid4().hex * 2, size=len(b"never stored"),
                     name="annexe.pdf", media_type="application/pdf", role=FileRole.ANNEX)
    sub = _submission(runtime, listed, absent)
    runtime.receipts.keep(_submission(runtime, listed).envelope.model_copy(
        update={"id": sub.envelope.id}))  # the door stored only the first file
    stored = runtime.receipts.stored_files([sub.envelope.id])
    verdict = await admit(runtime, sub, stored.get(sub.envelope.id))
    assert isinstance(verdict, Refused) and verdict.error is not None
    assert verdict.error.field == "files[1]" and "not in the object store" in verdict.error.message

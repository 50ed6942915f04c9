"""The archive step's journal comes from the journal segments, or the step fails (retried)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bus.audit.events import JournalIncomplete, complete_journal, journal_gap
from bus.audit.store import segment_key
from bus.engine import FlowEngine
from bus.flows import FlowRegistry
from bus.services.steps import error_info
from bus.tenants import TenantRegistry
from connectors.sae.asalae import TransferLookup
from schemas.envelope import Envelope, FileRef
from schemas.messages import Accepted, Artefact, JournalEvent, StepDone, StepTask
from workers.archive import mapping, step

DEMO_TENANTS = Path(__file__).resolve().parents[2] / "bus" / "dev" / "tenants.yaml"
STAMP = FileRef(sha256="c" * 64, size=5, media_type="application/xml", name="stamp.xml")


class SegmentsJournal:
    """The journal bucket's segments, in memory (what ``JournalStore`` reads)."""

    def __init__(self, events: list[JournalEvent]) -> None:
        self.data = {segment_key(1): b"".join(e.model_dump_json().encode() + b"\n"
                                              for e in events)}
        self.objects = self  # JournalStore.objects: the bucket view listing segments
        self.client, self.bucket = self, "journal"  # its own segment reader

    def list_times(self, prefix: str, after: str | None = None) -> dict[str, float]:
        return {k: 4e9 for k in self.data if k.startswith(prefix) and k > (after or "")}

    def get(self, key: str, offset: int = 0, length: int = 0) -> bytes | None:
        data = self.data.get(key)
        return None if data is None else data[offset:offset + length if length else None]


class FileStore:
    """Files put and read back by the step (the main bucket)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def put_bytes(self, tenant: str, data: bytes, **kw: Any) -> FileRef:
        sha = hashlib.sha256(data).hexdigest()
        self.files[sha] = data
        return FileRef(sha256=sha, size=len(data), media_type=kw["media_type"], name=kw["name"])

    def iter_file(self, tenant: str, ref: FileRef) -> list[bytes]:
        return [self.files[ref.sha256]]


def _history() -> tuple[list[JournalEvent], StepTask]:
    """A document through ``validate`` (with an artefact): its events and its archive task."""
    tenants = TenantRegistry.load(DEMO_TENANTS)
    engine = FlowEngine(FlowRegistry.load(), tenants)
    env = Envelope(tenant="216900910", flow="document", metadata={"title": "Arrêté 12"},
                   files=[FileRef(sha256="a" * 64, size=3, media_type="text/plain", name="a")])
    out = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    events = list(out.events)
    out = engine.on_step_done(out.state, StepDone(
        doc_id=env.id, task_id=out.tasks[0].task_id, step="validate", output={"pages": 1},
        artefacts=[Artefact(file=STAMP, step="validate", kind="generated")]))
    events += out.events
    return events, out.tasks[0].model_copy(update={"step": "archive", "kind": "archive"})


def _ctx(task: StepTask, store: FileStore) -> Any:
    runtime = SimpleNamespace(settings=None, store=store, flows=FlowRegistry.load())
    flow_step = runtime.flows.get("document").step("archive")
    return SimpleNamespace(task=task, runtime=runtime, step=flow_step, encrypt_files=False,
                           used_versions=[],
                           tenant=TenantRegistry.load(DEMO_TENANTS).get("216900910"))


def test_missing_journal_is_a_retryable_error_naming_the_document(monkeypatch) -> None:
    events, task = _history()
    done = next(i for i, e in enumerate(events) if e.type == "step-done")
    unsealed = events[:done]  # validate's result not in a segment yet
    monkeypatch.setattr(step, "JournalStore", lambda *a: SegmentsJournal(unsealed))
    with pytest.raises(JournalIncomplete, match=f"document {task.doc_id}: .*validate") as exc:
        asyncio.run(step._journal(_ctx(task, FileStore())))
    info = error_info(exc.value)
    assert info.retryable and task.doc_id in info.message


def test_journal_gaps_are_named() -> None:
    events, task = _history()
    assert journal_gap([], []) == "no event"
    assert journal_gap(events[1:], []) == "event 1 missing"
    assert journal_gap(events, task.outputs) is None
    with pytest.raises(JournalIncomplete, match="no event"):
        complete_journal(SegmentsJournal([]), task.doc_id, None, [])


def test_sip_carries_the_journal_read_from_the_segments(monkeypatch) -> None:
    events, task = _history()
    monkeypatch.setattr(step, "JournalStore", lambda *a: SegmentsJournal(events + events))
    sent: dict[str, Any] = {}

    async def send_sip(store, sae, tenant, agency, transfer_id, files, make_manifest,
                       algorithm):  # type: ignore[no-untyped-def]
        sent["files"] = files
        return STAMP, TransferLookup()

    monkeypatch.setattr(step, "send_sip", send_sip)
    store, ctx = FileStore(), _ctx(task, FileStore())
    ctx.runtime.store = store
    options = mapping.step_options(ctx.step.options | {"include_artefacts": True}, "archive")
    settings = mapping.tenant_settings(ctx.tenant)
    asyncio.run(step._send_document(ctx, options, settings, None, "T1"))
    by_id = {f.object_id: f for f in sent["files"]}
    journal = json.loads(b"".join(by_id[f"o-{task.doc_id}-journal"].chunks()))
    assert [e["event_id"] for e in journal["events"]] == [e.event_id for e in events]
    [done] = [e for e in journal["events"] if e["type"] == "step-done"]
    assert done["detail"]["artefacts"][0]["sha256"] == STAMP.sha256
    assert journal["step_outputs"] == {"validate": {"pages": 1}}
    assert STAMP.sha256 in {f.sha256 for f in sent["files"]}  # the earlier step's artefact

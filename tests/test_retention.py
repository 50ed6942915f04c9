"""Retention rules and the router's purge transition (no stack: pure functions)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

import schemas.payslip  # noqa: F401  (registers the payslip metadata model)
from bus.engine import FlowEngine
from bus.flows import FlowRegistry
from bus.retention import RetentionError, Rule, Rules, due_at
from bus.tenants import TenantRegistry
from schemas.envelope import Envelope, FileRef, utcnow
from schemas.messages import Artefact, DocState, DocumentState, OperatorAction, StepRecord

SHA = "a" * 64
SHA2 = "b" * 64


def _state(state: DocState = DocState.COMPLETED, **steps: str) -> DocumentState:
    env = Envelope(tenant="216900910", flow="payslip", metadata={
        "nir": "1 84 12 75 123 456 78", "agent_name": "Jeanne Martin", "period": "2026-11"},
        files=[FileRef(sha256=SHA, size=3, media_type="application/pdf",
                       name="bulletin_MARTIN.pdf")])
    done = utcnow() - timedelta(days=10)
    return DocumentState(
        doc_id="d1", envelope=env, state=state,
        steps=[StepRecord(name=n, status=s, finished_at=done) for n, s in steps.items()],
        artefacts=[Artefact(step="seal", kind="signed", file=FileRef(
            sha256=SHA2, size=3, media_type="application/pdf", name="MARTIN-signe.pdf"))])


def test_the_most_specific_rule_applies(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("rules:\n - {keep_days: 3650}\n - {flow: payslip, keep_days: 1826}\n"
                    " - {flow: payslip, tenant: '216900910', keep_days: 365}\n")
    rules = Rules.load(path)
    assert rules.rule_for("216900910", "payslip").keep_days == 365
    assert rules.rule_for("200000000", "payslip").keep_days == 1826
    assert rules.rule_for("200000000", "acte").keep_days == 3650
    assert Rules.load(None).rule_for("216900910", "payslip") is None


def test_a_bad_rule_is_named(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("rules:\n - {flow: payslip, keep_days: 10, after: ensap}\n")
    with pytest.raises(RetentionError, match=r"r\.yaml: rule 1: after"):
        Rules.load(path)
    path.write_text("rules:\n - {flow: payslip, keep: 10}\n")
    with pytest.raises(RetentionError, match="rule 1: keep_days"):
        Rules.load(path)


def test_the_clock_starts_at_the_acknowledgements() -> None:
    rule = Rule(flow="payslip", keep_days=5, after=["ensap", "archive"])
    state = _state(ensap="done", archive="done")
    assert due_at(state, rule) == state.steps[-1].finished_at + timedelta(days=5)
    assert due_at(_state(ensap="skipped", archive="done"), rule) is not None
    assert due_at(_state(ensap="done", archive="failed"), rule) is None  # not in the archive
    assert due_at(_state(DocState.WAITING, ensap="done"), rule) is None  # not finished
    errored = _state(DocState.ERROR, ensap="failed")
    assert due_at(errored, rule) == errored.updated_at + timedelta(days=5)


def _engine() -> FlowEngine:
    return FlowEngine(FlowRegistry.load(), TenantRegistry([]))


def test_the_router_purges_files_and_personal_fields_and_journals_it() -> None:
    state = _state(ensap="done", archive="done")
    msg = OperatorAction(doc_id="d1", action="purge", actor="ops", reason="over",
                         policy={"keep_days": 5})
    out = _engine().on_operator(state, msg)
    assert out.changed and [e.type for e in out.events] == ["purged"]
    detail = out.events[0].detail
    assert detail["files"] == [SHA, SHA2] and detail["policy"] == {"keep_days": 5}
    assert detail["metadata"] == ["agent_name", "nir"]
    assert out.state.envelope.metadata == {"period": "2026-11"}
    assert out.state.purged.files == [SHA, SHA2]
    names = [f.name for f in out.state.envelope.files] + [a.file.name for a in
                                                          out.state.artefacts]
    assert names == [f"purged-{SHA[:12]}", f"purged-{SHA2[:12]}"]
    again = _engine().on_operator(out.state, msg)  # a redelivered order: nothing more
    assert not again.changed and not again.events


def test_a_document_still_running_is_not_purged() -> None:
    state = _state(DocState.RUNNING, ensap="done")
    out = _engine().on_operator(state, OperatorAction(doc_id="d1", action="purge", actor="ops"))
    assert [e.type for e in out.events] == ["purge-refused"]
    assert "only finished documents" in out.events[0].detail["why"]
    assert out.state.purged is None and out.state.envelope.metadata["nir"]

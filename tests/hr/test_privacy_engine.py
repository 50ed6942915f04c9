"""The flow engine never journals a pay slip's personal values (names, NIR, amounts)."""

from __future__ import annotations

import json

from bus.engine import FlowEngine
from bus.flows import FlowRegistry
from bus.settings import Settings
from bus.tenants import TenantRegistry
from schemas.envelope import Envelope, FileRef
from schemas.messages import Accepted, ErrorInfo, StepDone, StepFailed
from tests.hr.payroll_fixtures import SIRET, sample_nir

NIR = sample_nir(3)


def _envelope() -> Envelope:
    meta = {"matricule": "M0003", "period": "2026-11", "employer_siret": SIRET, "nir": NIR,
            "agent_name": "Jeanne Secrète", "birth_date": "1979-05-17",
            "net_amount": "2345.67", "channels": ["ensap"]}
    pdf = FileRef(sha256="a" * 64, size=10, media_type="application/pdf",
                  name=f"{NIR[:13]}_{SIRET}_BPaie_01112026.pdf")
    return Envelope(tenant="216900910", flow="payslip", metadata=meta, files=[pdf])


def test_events_and_dead_letters_hold_no_personal_value() -> None:
    engine = FlowEngine(FlowRegistry.load(), TenantRegistry.load(Settings().tenants_path))
    env = _envelope()
    first = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    task = first.tasks[0]
    done = engine.on_step_done(first.state, StepDone(
        doc_id=env.id, task_id=task.task_id, step=task.step,
        output={"note": "checked Jeanne Secrète, net 2345.67 (234567 cents)"}))
    seal = done.tasks[0]
    failed = engine.on_step_failed(done.state, StepFailed(
        doc_id=env.id, task_id=seal.task_id, step=seal.step, error=ErrorInfo(
            error_class="StepError", message=f"cannot seal for NIR {NIR[:13]}, born 17051979",
            retryable=False)))
    text = json.dumps([e.model_dump(mode="json") for t in (first, done, failed)
                       for e in t.events] + [d.model_dump(mode="json")
                                             for d in failed.dead_letters])
    for secret in (NIR, NIR[:13], "Jeanne Secrète", "2345.67", "234567", "17051979"):
        assert secret not in text, secret
    assert "[redacted]" in text
    assert failed.state.envelope.metadata["nir"] == NIR  # the state itself keeps the data

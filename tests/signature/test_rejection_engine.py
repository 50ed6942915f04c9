"""A business rejection (signer refused) ends the document ``rejected``: no retry, no DLQ."""

from __future__ import annotations

import asyncio
from unittest.mock import MagicMock

from bus.engine import FlowEngine
from bus.flows import FlowRegistry
from bus.services.steps import error_info, execute
from bus.tenants import ConnectorConfig, Tenant, TenantRegistry
from schemas.envelope import Envelope, FileRef
from schemas.flow import FlowDefinition
from schemas.messages import Accepted, DocState, ErrorInfo, StepDone, StepFailed, StepTask
from workers.step import StepRejected

FLOW = FlowDefinition.model_validate({
    "name": "document", "metadata_model": "document",
    "steps": [{"name": "validate", "kind": "validate"},
              {"name": "sign", "kind": "sign", "connector": "signature",
               "retry": {"max_attempts": 5}},
              {"name": "deposit", "kind": "deposit", "connector": "ged"}]})
TENANT = Tenant(siren="216900910", name="A", connectors={
    "ged": ConnectorConfig(type="folder"), "signature": ConnectorConfig(type="seal")})


def _to_sign_step() -> tuple[FlowEngine, Envelope, object]:
    engine = FlowEngine(FlowRegistry([FLOW]), TenantRegistry([TENANT]))
    env = Envelope(tenant="216900910", flow="document", metadata={"title": "t"},
                   files=[FileRef(sha256="b" * 64, size=3, media_type="text/plain", name="a")])
    out = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    out = engine.on_step_done(out.state, StepDone(doc_id=env.id, task_id=out.tasks[0].task_id,
                                                  step="validate"))
    assert out.tasks[0].step == "sign"
    return engine, env, out


def test_business_refusal_is_terminal_rejected_without_retry_or_dead_letter() -> None:
    engine, env, out = _to_sign_step()
    error = ErrorInfo(error_class="StepRejected", message="refusé par le maire: montant",
                      business=True, retryable=True)  # business wins over retryable
    out = engine.on_step_failed(out.state, StepFailed(
        doc_id=env.id, task_id=out.tasks[0].task_id, step="sign", error=error))
    assert out.state.state == DocState.REJECTED
    assert out.state.error.message == "refusé par le maire: montant"
    assert not out.tasks and not out.dead_letters and not out.delays
    assert [e.type for e in out.events] == ["step-failed", "rejected"]
    assert out.events[-1].detail["reason"] == "refusé par le maire: montant"
    assert out.state.record("sign").status == "failed"
    assert out.state.record("deposit").status == "running"  # never started: record is fresh
    assert out.state.current_step is None


def test_non_business_permanent_failure_still_errors() -> None:
    engine, env, out = _to_sign_step()
    out = engine.on_step_failed(out.state, StepFailed(
        doc_id=env.id, task_id=out.tasks[0].task_id, step="sign",
        error=ErrorInfo(error_class="PermanentError", message="HTTP 400")))
    assert out.state.state == DocState.ERROR and out.dead_letters


def test_step_rejected_exception_becomes_a_business_step_failed() -> None:
    info = error_info(StepRejected("refused", partner="iparapheur"))
    assert info.business and not info.retryable and info.error_class == "StepRejected"

    async def rejecting(ctx: object) -> None:
        raise StepRejected("signer refused: wrong amount")

    runtime = MagicMock()
    runtime.flows.get.return_value = FLOW
    runtime.tenants.get.return_value = TENANT
    runtime.registry.step.return_value = rejecting
    env = Envelope(tenant="216900910", flow="document", metadata={"title": "t"},
                   files=[FileRef(sha256="b" * 64, size=3, media_type="text/plain", name="a")])
    task = StepTask(doc_id=env.id, step="sign", kind="sign", envelope=env)
    result = asyncio.run(execute(runtime, task))
    assert isinstance(result, StepFailed)
    assert result.error.business and result.error.message == "signer refused: wrong amount"

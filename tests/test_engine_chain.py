"""Chained steps: consecutive chainable steps are issued in one task; their results come
back together and are journaled one by one; the router still retries from the failed one."""

from __future__ import annotations

import pytest

from bus.engine import FlowEngine
from bus.flows import FlowRegistry
from bus.services.steps import chained_task
from bus.tenants import ConnectorConfig, Tenant, TenantRegistry
from schemas.envelope import Envelope, FileRef
from schemas.messages import (
    Accepted,
    DocState,
    ErrorInfo,
    StepDone,
    StepFailed,
    StepResults,
    StepTask,
    StepWaiting,
)

TENANT = Tenant(siren="216900910", name="A", connectors={"ged": ConnectorConfig(type="folder")})


@pytest.fixture()
def engine() -> FlowEngine:
    return FlowEngine(FlowRegistry.load(), TenantRegistry([TENANT]),
                      chainable=frozenset({"validate", "deposit"}))


def _start(engine: FlowEngine, **meta: object):
    env = Envelope(tenant=TENANT.siren, flow="document", metadata={"title": "t", **meta},
                   files=[FileRef(sha256="b" * 64, size=3, media_type="text/plain", name="a")])
    return engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))


def _done(task_id: str, step: str, **output: object) -> StepDone:
    return StepDone(doc_id="d", task_id=task_id, step=step, output=dict(output))


def test_consecutive_chainable_steps_go_out_as_one_task(engine: FlowEngine) -> None:
    out = _start(engine)
    [task] = out.tasks
    assert task.step == "validate" and [(c.step, c.attempt) for c in task.then] == [
        ("deposit", 1)]
    assert task.then[0].idempotency_key == f"{task.doc_id}/deposit"
    assert [e.type for e in out.events] == ["submitted", "step-started"]


def test_a_chain_s_results_are_journaled_one_by_one_and_send_nothing_more(
        engine: FlowEngine) -> None:
    out = _start(engine)
    [task] = out.tasks
    link = task.then[0]
    results = StepResults(doc_id=task.doc_id, results=[
        _done(task.task_id, "validate", ok=True), _done(link.task_id, "deposit", path="x")])
    after = engine.on_step_results(out.state, results)
    assert after.tasks == [] and after.state.state == DocState.COMPLETED
    assert [(e.type, e.step) for e in after.events] == [
        ("step-done", "validate"), ("step-skipped", "sign"), ("step-started", "deposit"),
        ("step-done", "deposit"), ("step-skipped", "archive"),
        ("step-skipped", "archive-batch"), ("completed", None)]
    assert after.events[2].detail["chained"] is True
    seqs = [e.seq for e in out.events + after.events]
    assert seqs == list(range(1, len(seqs) + 1))
    assert after.state.record("deposit").attempts == 1 and after.state.chained == []


def test_a_chained_step_the_worker_did_not_run_gets_its_own_task(engine: FlowEngine) -> None:
    out = _start(engine)
    [task] = out.tasks
    after = engine.on_step_done(out.state, _done(task.task_id, "validate"))
    [sent] = after.tasks
    assert (sent.step, sent.task_id, sent.then) == ("deposit", task.then[0].task_id, [])
    assert after.state.current_task == sent.task_id


def test_a_chained_step_that_fails_is_retried_from_itself(engine: FlowEngine) -> None:
    out = _start(engine)
    [task] = out.tasks
    error = ErrorInfo(error_class="TransientError", message="503", retryable=True)
    failed = StepFailed(doc_id=task.doc_id, task_id=task.then[0].task_id, step="deposit",
                        error=error)
    after = engine.on_step_results(out.state, StepResults(
        doc_id=task.doc_id, results=[_done(task.task_id, "validate"), failed]))
    [retry] = after.tasks
    assert retry.step == "deposit" and retry.attempt == 2
    assert retry.task_id not in (task.task_id, task.then[0].task_id)
    assert after.delays[retry.task_id] > 0
    assert after.state.record("validate").status == "done"


def test_results_of_a_superseded_chain_change_nothing(engine: FlowEngine) -> None:
    out = _start(engine)
    [task] = out.tasks
    error = ErrorInfo(error_class="TransientError", message="503", retryable=True)
    retried = engine.on_step_failed(out.state, StepFailed(
        doc_id=task.doc_id, task_id=task.task_id, step="validate", error=error))
    late = engine.on_step_results(retried.state, StepResults(doc_id=task.doc_id, results=[
        _done(task.task_id, "validate"), _done(task.then[0].task_id, "deposit")]))
    assert late.tasks == [] and late.events == [] and not late.changed


def test_a_step_that_waits_ends_the_chain(engine: FlowEngine) -> None:
    out = _start(engine)
    [task] = out.tasks
    waiting = StepWaiting(doc_id=task.doc_id, task_id=task.task_id, step="validate",
                          poll_after=5)
    after = engine.on_step_results(out.state, StepResults(doc_id=task.doc_id,
                                                          results=[waiting]))
    [poll] = after.tasks
    assert poll.step == "validate" and poll.then == [] and after.state.chained == []


def test_steps_skipped_between_chained_ones_are_journaled_as_skipped(
        engine: FlowEngine) -> None:
    out = _start(engine)  # no "sign" in the metadata: the flow's sign step is skipped
    [task] = out.tasks
    assert [c.step for c in task.then] == ["deposit"]
    after = engine.on_step_results(out.state, StepResults(doc_id=task.doc_id, results=[
        _done(task.task_id, "validate"), _done(task.then[0].task_id, "deposit")]))
    assert [(e.type, e.step) for e in after.events][:3] == [
        ("step-done", "validate"), ("step-skipped", "sign"), ("step-started", "deposit")]


def test_nothing_is_chained_when_the_steps_after_are_all_skipped(engine: FlowEngine) -> None:
    [task] = _start(engine, deposit=False).tasks
    assert task.then == []


def test_the_worker_builds_a_chained_task_as_the_router_would() -> None:
    engine = FlowEngine(FlowRegistry.load(), TenantRegistry([TENANT]),
                        chainable=frozenset({"validate", "deposit"}))
    out = _start(engine)
    [task] = out.tasks
    done = _done(task.task_id, "validate", report="r")
    built = chained_task(task, done, task.then[0])
    after = engine.on_step_done(out.state, done)
    [expected] = after.tasks
    keep = {"task_id", "step", "kind", "attempt", "idempotency_key", "progress", "outputs",
            "then", "doc_id"}
    assert built.model_dump(include=keep) == expected.model_dump(include=keep)
    assert isinstance(built, StepTask)

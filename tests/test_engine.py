"""The router's transition logic, without I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

from bus.engine import FlowEngine
from bus.flows import FlowConfigError, FlowRegistry
from bus.plugins import load_plugins
from bus.tenants import ConnectorConfig, Tenant, TenantRegistry
from schemas.envelope import Envelope, FileRef
from schemas.flow import FlowDefinition
from schemas.messages import (
    Accepted,
    Artefact,
    DocState,
    ErrorInfo,
    OperatorAction,
    Refused,
    StepDone,
    StepFailed,
    StepWaiting,
    TaskDue,
    Wake,
)

GED = {"ged": ConnectorConfig(type="folder")}


def _registry(*tenants: Tenant) -> TenantRegistry:
    return TenantRegistry(list(tenants) or [Tenant(siren="216900910", name="A", connectors=GED)])


def _env(**meta: object) -> Envelope:
    return Envelope(tenant="216900910", flow="document", metadata={"title": "t", **meta},
                    files=[FileRef(sha256="b" * 64, size=3, media_type="text/plain", name="a")])


@pytest.fixture()
def engine() -> FlowEngine:
    return FlowEngine(FlowRegistry.load(), _registry())


def _run_to_end(engine: FlowEngine, env: Envelope) -> list[str]:
    out = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    kinds = []
    while out.tasks:
        task = out.tasks[0]
        kinds.append(task.step)
        out = engine.on_step_done(out.state, StepDone(doc_id=env.id, task_id=task.task_id,
                                                      step=task.step))
    assert out.state.state == DocState.COMPLETED
    return kinds


def test_the_submitted_event_names_the_submitter(engine: FlowEngine) -> None:
    env = _env()
    out = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    assert out.events[0].type == "submitted" and out.events[0].actor == env.producer
    env = env.model_copy(update={"submitted_by": "alice (token 0123456789abcdef)"})
    out = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    assert out.events[0].actor == "alice (token 0123456789abcdef)"


def test_document_flow_runs_validate_then_deposit(engine: FlowEngine) -> None:
    assert _run_to_end(engine, _env()) == ["validate", "deposit"]


def test_condition_skips_deposit_and_journals_it(engine: FlowEngine) -> None:
    env = _env(deposit=False)
    out = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    out = engine.on_step_done(out.state, StepDone(doc_id=env.id, task_id=out.tasks[0].task_id,
                                                  step="validate"))
    assert out.state.state == DocState.COMPLETED
    # sign (meta.sign unset), deposit, then archive and archive-batch (tenant without an
    # sae connector) are skipped
    assert [e.type for e in out.events] == ["step-done", "step-skipped", "step-skipped",
                                            "step-skipped", "step-skipped", "completed"]
    assert out.state.record("deposit").status == "skipped"


def test_events_are_numbered_without_gaps(engine: FlowEngine) -> None:
    env = _env()
    out = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    seqs = [e.seq for e in out.events]
    out = engine.on_step_done(out.state, StepDone(doc_id=env.id, task_id=out.tasks[0].task_id,
                                                  step="validate"))
    seqs += [e.seq for e in out.events]
    assert seqs == list(range(1, len(seqs) + 1))
    assert len({e.event_id for e in out.events}) == len(out.events)


def test_stale_or_duplicate_results_change_nothing(engine: FlowEngine) -> None:
    env = _env()
    first = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    task = first.tasks[0]
    done = StepDone(doc_id=env.id, task_id=task.task_id, step=task.step)
    second = engine.on_step_done(first.state.model_copy(deep=True), done)
    again = engine.on_step_done(second.state.model_copy(deep=True), done)
    assert not again.changed and not again.tasks and not again.events


def test_redelivered_submission_resends_the_task_in_flight(engine: FlowEngine) -> None:
    env = _env()
    first = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    again = engine.on_accepted(first.state, Accepted(doc_id=env.id, envelope=env))
    assert not again.changed
    assert [t.task_id for t in again.tasks] == [first.tasks[0].task_id]


def test_redelivered_waiting_step_keeps_its_progress_and_idempotency_key() -> None:
    engine = _waiting_engine(deadline=3600)
    env = _env()
    out = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    out = engine.on_step_waiting(out.state, StepWaiting(
        doc_id=env.id, task_id=out.tasks[0].task_id, step="validate", poll_after=1,
        progress={"letters": ["L1"]}))
    polled = out.tasks[0]
    [again] = engine.on_accepted(out.state, Accepted(doc_id=env.id, envelope=env)).tasks
    assert again.task_id == polled.task_id
    assert again.progress == {"letters": ["L1"]} == polled.progress
    assert again.idempotency_key == polled.idempotency_key == f"{env.id}/validate"
    assert again.model_dump(exclude={"issued_at"}) == polled.model_dump(exclude={"issued_at"})


def test_retryable_failure_retries_then_errors(engine: FlowEngine) -> None:
    env = _env()
    out = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    error = ErrorInfo(error_class="TransientError", message="503", retryable=True)
    attempts = 0
    while out.tasks:
        attempts += 1
        out = engine.on_step_failed(out.state, StepFailed(
            doc_id=env.id, task_id=out.tasks[0].task_id, step="validate", error=error))
    assert attempts == FlowRegistry.load().get("document").step("validate").retry.max_attempts
    assert out.state.state == DocState.ERROR
    assert out.state.error == error


def test_permanent_failure_errors_at_once(engine: FlowEngine) -> None:
    env = _env()
    out = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    out = engine.on_step_failed(out.state, StepFailed(
        doc_id=env.id, task_id=out.tasks[0].task_id, step="validate",
        error=ErrorInfo(error_class="StepError", message="bad", field="files[0]")))
    assert out.state.state == DocState.ERROR and not out.tasks


def test_refused_submission_is_terminal(engine: FlowEngine) -> None:
    env = _env()
    out = engine.on_refused(None, Refused(doc_id=env.id, envelope=env, error=ErrorInfo(
        error_class="SubmissionError", message="metadata.title: required", field="metadata")))
    assert out.state.state == DocState.REJECTED and out.events[0].type == "rejected"


def test_startup_check_names_unknown_step_kind(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text(
        "name: x\nmetadata_model: document\nsteps:\n  - {name: s1, kind: teleport}\n")
    with pytest.raises(FlowConfigError, match="flow 'x', step 's1': unknown step kind"):
        FlowRegistry.load(tmp_path).check(_registry(), set(load_plugins().step_kinds()))


def test_startup_check_names_missing_connector() -> None:
    tenants = _registry(Tenant(siren="214502494", name="B", flows=["document"]))
    with pytest.raises(FlowConfigError,
                       match=r"flow 'document', step 'deposit': tenant 214502494 .* 'ged'"):
        FlowRegistry.load().check(tenants, set(load_plugins().step_kinds()))


def test_startup_check_names_bad_flow_file(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("name: x\nsteps: []\n")
    with pytest.raises(FlowConfigError, match=r"flow file broken\.yaml"):
        FlowRegistry.load(tmp_path)


def test_shipped_flows_pass_the_startup_check() -> None:
    from bus.settings import Settings

    kinds = set(load_plugins().step_kinds())
    FlowRegistry.load().check(TenantRegistry.load(Settings().tenants_path), kinds)


def test_flow_definitions_are_data() -> None:
    flow = FlowRegistry.load().get("document")
    assert isinstance(flow, FlowDefinition)
    assert flow.step("deposit").connector == "ged"


def _waiting_engine(deadline: float) -> FlowEngine:
    flow = FlowDefinition.model_validate({
        "name": "document", "metadata_model": "document",
        "steps": [{"name": "validate", "kind": "validate",
                   "wait": {"poll_seconds": 5, "max_poll_seconds": 60,
                            "deadline_seconds": deadline}}]})
    return FlowEngine(FlowRegistry([flow]), _registry())


def test_waiting_step_polls_through_delays_and_journals_changes_only() -> None:
    engine = _waiting_engine(deadline=3600)
    env = _env()
    out = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    seen = []
    for note in ("sent", "sent", "acknowledged"):
        task = out.tasks[0]
        out = engine.on_step_waiting(out.state, StepWaiting(
            doc_id=env.id, task_id=task.task_id, step="validate", poll_after=1,
            progress={"status": note}, note=note))
        seen.append([e.type for e in out.events])
        assert out.state.state == DocState.WAITING
        assert out.delays[out.tasks[0].task_id] == 5  # poll_after raised to poll_seconds
        assert out.tasks[0].progress == {"status": note}
    assert seen == [["step-waiting"], [], ["step-waiting"]]
    assert out.state.record("validate").attempts == 1
    task = out.tasks[0]
    out = engine.on_step_done(out.state, StepDone(doc_id=env.id, task_id=task.task_id,
                                                  step="validate"))
    assert out.state.state == DocState.COMPLETED


def test_wake_polls_a_waiting_step_now_and_the_scheduled_poll_goes_stale() -> None:
    engine = _waiting_engine(deadline=3600)
    env = _env()
    out = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    before = engine.on_wake(out.state, Wake(doc_id=env.id, step="validate"))
    assert not before.changed and not before.tasks  # running, not waiting: ignored
    out = engine.on_step_waiting(out.state, StepWaiting(
        doc_id=env.id, task_id=out.tasks[0].task_id, step="validate", poll_after=30,
        progress={"lot": "L1"}))
    scheduled = out.tasks[0]
    assert out.delays[scheduled.task_id] == 30
    assert not engine.on_wake(out.state, Wake(doc_id=env.id, step="deposit")).tasks
    woken = engine.on_wake(out.state, Wake(doc_id=env.id, step="validate", reason="lot sent"))
    [now] = woken.tasks
    assert now.task_id != scheduled.task_id and now.task_id not in woken.delays
    assert now.progress == {"lot": "L1"} and not woken.events  # polls are not journaled
    late = engine.on_step_done(woken.state, StepDone(doc_id=env.id, task_id=scheduled.task_id,
                                                     step="validate"))
    assert not late.changed  # the poll scheduled before the wake is stale
    done = engine.on_step_done(woken.state, StepDone(doc_id=env.id, task_id=now.task_id,
                                                     step="validate"))
    assert done.state.state == DocState.COMPLETED
    assert done.state.record("validate").attempts == 1


def test_a_wake_tells_the_step_what_happened_through_its_progress() -> None:
    engine = _waiting_engine(deadline=3600)
    env = _env()
    out = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    out = engine.on_step_waiting(out.state, StepWaiting(
        doc_id=env.id, task_id=out.tasks[0].task_id, step="validate", poll_after=30,
        progress={"lot": "L1", "queued": True}))
    told = {"outcome": {"status": "accepted", "numero_ordre": "7"}}
    woken = engine.on_wake(out.state, Wake(doc_id=env.id, step="validate", progress=told))
    [now] = woken.tasks
    assert now.progress == {"lot": "L1", "queued": True} | told
    assert woken.state.record("validate").progress == now.progress  # kept for redelivery
    late = engine.on_wake(woken.state, Wake(doc_id=env.id, step="deposit", progress=told))
    assert not late.tasks and late.state.latest("deposit") is None  # another step: ignored


def test_a_delayed_task_goes_on_when_due_only_if_still_current() -> None:
    engine = _waiting_engine(deadline=3600)
    env = _env()
    out = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    out = engine.on_step_waiting(out.state, StepWaiting(
        doc_id=env.id, task_id=out.tasks[0].task_id, step="validate", poll_after=30))
    scheduled = out.tasks[0]
    due = engine.on_task_due(out.state, TaskDue(doc_id=env.id, task=scheduled))
    assert due.tasks == [scheduled] and not due.delays and not due.changed and not due.events
    woken = engine.on_wake(out.state, Wake(doc_id=env.id, step="validate"))
    stale = engine.on_task_due(woken.state, TaskDue(doc_id=env.id, task=scheduled))
    assert not stale.tasks and not stale.changed  # the wake's poll replaced it: not run
    done = engine.on_step_done(woken.state, StepDone(
        doc_id=env.id, task_id=woken.tasks[0].task_id, step="validate"))
    assert done.state.state == DocState.COMPLETED
    assert not engine.on_task_due(done.state, TaskDue(doc_id=env.id, task=woken.tasks[0])).tasks


def test_waiting_past_the_deadline_is_an_error_and_a_dead_letter() -> None:
    engine = _waiting_engine(deadline=0.001)
    env = _env()
    out = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    import time

    time.sleep(0.01)
    out = engine.on_step_waiting(out.state, StepWaiting(
        doc_id=env.id, task_id=out.tasks[0].task_id, step="validate", poll_after=1))
    assert out.state.state == DocState.ERROR
    assert out.state.error.error_class == "DeadlineExceeded"
    assert out.dead_letters[0].step == "validate"


def test_replay_resumes_at_the_failed_step_with_the_operator_named(engine: FlowEngine) -> None:
    env = _env()
    out = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    out = engine.on_step_done(out.state, StepDone(doc_id=env.id, task_id=out.tasks[0].task_id,
                                                  step="validate"))
    out = engine.on_step_failed(out.state, StepFailed(
        doc_id=env.id, task_id=out.tasks[0].task_id, step="deposit",
        error=ErrorInfo(error_class="PermanentError", message="403")))
    letter = out.dead_letters[0]
    assert (letter.doc_id, letter.step, letter.attempts) == (env.id, "deposit", 1)
    out = engine.on_operator(out.state, OperatorAction(
        doc_id=env.id, action="replay", actor="alice", dlq_id=letter.dlq_id))
    assert out.tasks[0].step == "deposit" and out.state.state == DocState.RUNNING
    assert out.events[0].type == "replayed" and out.events[0].actor == "alice"
    again = engine.on_operator(out.state, OperatorAction(doc_id=env.id, action="replay",
                                                         actor="bob"))
    assert again.events[0].type == "replay-refused" and not again.tasks


def test_artefacts_of_a_waiting_step_are_journaled() -> None:
    engine = _waiting_engine(deadline=3600)
    env = _env()
    out = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    ack = FileRef(sha256="c" * 64, size=3, media_type="application/xml", name="ack.xml")
    out = engine.on_step_waiting(out.state, StepWaiting(
        doc_id=env.id, task_id=out.tasks[0].task_id, step="validate", poll_after=1,
        artefacts=[Artefact(file=ack, step="validate", kind="partner-reply")]))
    [event] = out.events
    assert event.detail["artefacts"] == [ack.model_dump(mode="json")]

"""The flow engine: pure transition logic of the router (no I/O).

Given a document's state and an incoming router message, it returns the new
state, the step tasks to dispatch and the journal events to append.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bus.flows import FlowRegistry
from bus.tenants import TenantRegistry
from schemas.envelope import utcnow
from schemas.flow import FlowDefinition, StepDefinition
from schemas.messages import (
    Accepted,
    DocState,
    DocumentState,
    JournalEvent,
    Refused,
    StepDone,
    StepFailed,
    StepTask,
)


@dataclass
class Transition:
    """What the router must do after one message."""

    state: DocumentState
    tasks: list[StepTask] = field(default_factory=list)
    events: list[JournalEvent] = field(default_factory=list)
    changed: bool = True


class FlowEngine:
    """Decides every document's next step from its flow definition."""

    def __init__(self, flows: FlowRegistry, tenants: TenantRegistry) -> None:
        self.flows = flows
        self.tenants = tenants

    # --- entry points ---------------------------------------------------------

    def on_accepted(self, state: DocumentState | None, msg: Accepted) -> Transition:
        if state is not None:
            return self._redeliver(state)
        state = DocumentState(doc_id=msg.doc_id, envelope=msg.envelope, state=DocState.RUNNING)
        out = Transition(state)
        self._event(out, "submitted", detail={
            "producer": msg.envelope.producer,
            "idempotency_key": msg.envelope.idempotency_key,
            "files": [f.model_dump(mode="json") for f in msg.envelope.files],
        })
        self._advance(out, after=None)
        return out

    def on_refused(self, state: DocumentState | None, msg: Refused) -> Transition:
        if state is not None:
            return Transition(state, changed=False)
        state = DocumentState(doc_id=msg.doc_id, envelope=msg.envelope,
                              state=DocState(msg.state), error=msg.error,
                              duplicate_of=msg.duplicate_of)
        out = Transition(state)
        self._event(out, msg.state, detail={
            "error": msg.error.model_dump(mode="json"), "duplicate_of": msg.duplicate_of,
        })
        return out

    def on_step_done(self, state: DocumentState | None, msg: StepDone) -> Transition:
        if state is None or state.current_task != msg.task_id:
            return self._stale(state)
        rec = state.record(msg.step)
        rec.status, rec.finished_at, rec.output, rec.error = "done", utcnow(), msg.output, None
        state.artefacts.extend(msg.artefacts)
        out = Transition(state)
        self._event(out, "step-done", step=msg.step, detail={
            "output": msg.output,
            "artefacts": [a.file.model_dump(mode="json") for a in msg.artefacts],
        })
        self._advance(out, after=msg.step)
        return out

    def on_step_failed(self, state: DocumentState | None, msg: StepFailed) -> Transition:
        if state is None or state.current_task != msg.task_id:
            return self._stale(state)
        step = self._flow(state).step(msg.step)
        rec = state.record(msg.step)
        rec.error = msg.error
        out = Transition(state)
        self._event(out, "step-failed", step=msg.step,
                    detail={"error": msg.error.model_dump(mode="json"),
                            "attempt": rec.attempts})
        if msg.error.retryable and rec.attempts < step.retry.max_attempts:
            self._dispatch(out, step)
            return out
        rec.status, rec.finished_at = "failed", utcnow()
        state.state, state.error = DocState.ERROR, msg.error
        state.current_step = state.current_task = None
        self._event(out, "error", step=msg.step,
                    detail={"error": msg.error.model_dump(mode="json")})
        return out

    # --- internals ------------------------------------------------------------

    def _flow(self, state: DocumentState) -> FlowDefinition:
        assert state.envelope is not None
        return self.flows.get(state.envelope.flow)

    def _advance(self, out: Transition, after: str | None) -> None:
        state = out.state
        flow = self._flow(state)
        assert state.envelope is not None
        tenant = self.tenants.get(state.envelope.tenant)
        name = flow.steps[0].name if after is None else flow.successor(after)
        while name is not None:
            step = flow.step(name)
            skip = self._skip_reason(step, state, tenant.settings, set(tenant.connectors))
            if skip is None:
                self._dispatch(out, step)
                return
            rec = state.record(step.name)
            rec.status, rec.finished_at = "skipped", utcnow()
            self._event(out, "step-skipped", step=step.name, detail={"reason": skip})
            name = flow.successor(name)
        state.state, state.current_step, state.current_task = DocState.COMPLETED, None, None
        self._event(out, "completed")

    @staticmethod
    def _skip_reason(step: StepDefinition, state: DocumentState, tenant_settings: dict,
                     connectors: set[str]) -> str | None:
        assert state.envelope is not None
        if not step.applies(state.envelope.metadata, tenant_settings):
            return "conditions not met: " + ", ".join(
                f"{c.field} {c.op} {c.value!r}" for c in step.when)
        if step.connector is not None and step.connector not in connectors:
            return f"tenant has no {step.connector!r} connector (optional step)"
        return None

    def _dispatch(self, out: Transition, step: StepDefinition) -> None:
        state = out.state
        assert state.envelope is not None
        rec = state.record(step.name)
        rec.status = "running"
        rec.attempts += 1
        rec.started_at = rec.started_at or utcnow()
        task = StepTask(
            task_id=f"{state.doc_id}/{state.seq + 1}",
            doc_id=state.doc_id, step=step.name, kind=step.kind, attempt=rec.attempts,
            envelope=state.envelope, outputs=state.outputs(),
        )
        rec.task_id = task.task_id
        state.state, state.current_step, state.current_task = (
            DocState.RUNNING, step.name, task.task_id)
        out.tasks.append(task)
        self._event(out, "step-started", step=step.name,
                    detail={"task_id": task.task_id, "attempt": rec.attempts})

    def _event(self, out: Transition, kind: str, step: str | None = None,
               detail: dict | None = None) -> None:
        state = out.state
        state.seq += 1
        state.updated_at = utcnow()
        env = state.envelope
        out.events.append(JournalEvent(
            event_id=f"{state.doc_id}:{state.seq}", doc_id=state.doc_id, seq=state.seq,
            tenant=env.tenant if env else None, flow=env.flow if env else None,
            type=kind, state=state.state, step=step, at=state.updated_at,
            detail=detail or {},
        ))

    def _redeliver(self, state: DocumentState) -> Transition:
        """A message seen before: re-send the task in flight (workers are idempotent)."""
        out = Transition(state, changed=False)
        if state.state.terminal or state.current_step is None or state.envelope is None:
            return out
        rec = state.record(state.current_step)
        step = self._flow(state).step(state.current_step)
        out.tasks.append(StepTask(
            task_id=state.current_task or "", doc_id=state.doc_id, step=step.name,
            kind=step.kind, attempt=rec.attempts, envelope=state.envelope,
            outputs=state.outputs(),
        ))
        return out

    def _stale(self, state: DocumentState | None) -> Transition:
        if state is None:
            return Transition(DocumentState(doc_id="?"), changed=False)
        return Transition(state, changed=False)

"""The flow engine: pure transition logic of the router (no I/O).

Given a document's state and an incoming router message, it returns the new
state, the step tasks to dispatch and the journal events to append.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta

from bus import purge
from bus.audit.chain import event_hash
from bus.flows import FlowRegistry
from bus.privacy import scrub_for
from bus.tenants import TenantRegistry
from schemas.envelope import utcnow
from schemas.flow import FlowDefinition, StepDefinition
from schemas.messages import (
    Accepted,
    Artefact,
    ChainedStep,
    ConfigurationLoaded,
    DeadLetter,
    DocState,
    DocumentState,
    ErrorInfo,
    JournalEvent,
    MessageSource,
    OperatorAction,
    Refused,
    RouterMessage,
    StepDone,
    StepFailed,
    StepRecord,
    StepResults,
    StepTask,
    StepWaiting,
    TaskDue,
    Wake,
)
from schemas.search_keys import KeyHasher, extract_keys


def step_task(state: DocumentState, step: StepDefinition, task_id: str) -> StepTask:
    """The task running ``step`` of ``state``'s document, from its step record: the one
    builder of step tasks, for first dispatches, retries, polls and redeliveries alike."""
    assert state.envelope is not None
    rec = state.record(step.name)
    return StepTask(
        task_id=task_id, doc_id=state.doc_id, step=step.name, kind=step.kind,
        attempt=rec.attempts, envelope=state.envelope, outputs=state.outputs(),
        progress=rec.progress, idempotency_key=rec.idempotency_key or "",
        then=list(state.chained),
    )


def _artefacts(artefacts: list[Artefact]) -> dict:
    """The journal detail naming a result's artefacts (so the journal lists every one)."""
    return {"artefacts": [a.file.model_dump(mode="json") for a in artefacts]} if artefacts else {}


def _new_task_id(state: DocumentState) -> str:
    """The id of the next task issued for the document (numbered in issue order)."""
    state.tasks_issued += 1
    return f"{state.doc_id}/t{state.tasks_issued}"


def _step_key(state: DocumentState, step: str) -> str:
    """The idempotency key a step's outside effects carry (the same on every attempt)."""
    return f"{state.doc_id}/{step}"


def _take_chained(state: DocumentState, name: str) -> ChainedStep | None:
    """The next chained step if it is ``name`` (then off the chain); else the chain is
    dropped (nothing runs it any more)."""
    if state.chained and state.chained[0].step == name:
        return state.chained.pop(0)
    state.chained = []
    return None


def _sent(out: Transition, ran: set[str]) -> Transition:
    """Send the held task of a chained step entered, unless its result came in ``ran``
    (the results applied): the worker stopped before it."""
    held, out.held = out.held, None
    if held is not None and held.task_id not in ran \
            and out.state.current_task == held.task_id:
        out.tasks.append(held)
    return out


@dataclass
class Transition:
    """What the router must do after one message."""

    state: DocumentState
    tasks: list[StepTask] = field(default_factory=list)
    events: list[JournalEvent] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    delays: dict[str, float] = field(default_factory=dict)  # task_id -> seconds
    changed: bool = True
    held: StepTask | None = None  # the chained step entered: its worker already runs it

    def merge(self, other: Transition) -> None:
        """Add what ``other`` (a later transition of the same document) emits."""
        self.state = other.state
        self.tasks += other.tasks
        self.events += other.events
        self.dead_letters += other.dead_letters
        self.delays |= other.delays
        self.changed = self.changed or other.changed
        self.held = other.held


class FlowEngine:
    """Decides every document's next step from its flow definition."""

    def __init__(self, flows: FlowRegistry, tenants: TenantRegistry,
                 rng: random.Random | None = None, key_hasher: KeyHasher | None = None,
                 chainable: frozenset[str] = frozenset()) -> None:
        """``chainable``: the step kinds a worker may run right after the step before them
        in one task (``@step(..., chainable=True)``): consecutive ones are issued together."""
        self.flows = flows
        self.tenants = tenants
        self.rng = rng or random.Random()
        self.key_hasher = key_hasher  # personal search keys; without it they are left out
        self.chainable = chainable

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
            "keys": self._keys(state, None, msg.envelope.metadata),
        }, actor=msg.envelope.submitted_by or msg.envelope.producer)
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
        return _sent(self._done(state, msg), ran=set())

    def on_step_results(self, state: DocumentState | None, msg: StepResults) -> Transition:
        """A task's result and those of the steps chained after it, applied in order as
        if they had come one by one; a chained step entered but not run (its worker
        stopped before it) gets its task now."""
        out = self._stale(state)
        apply = {StepDone: self._done, StepFailed: self.on_step_failed,
                 StepWaiting: self.on_step_waiting}
        for result in msg.results:
            out.merge(apply[type(result)](state, result))  # type: ignore[operator]
        return _sent(out, ran={r.task_id for r in msg.results})

    def _done(self, state: DocumentState | None, msg: StepDone) -> Transition:
        if state is None or state.current_task != msg.task_id:
            return self._stale(state)
        rec = state.record(msg.step)
        rec.status, rec.finished_at, rec.output, rec.error = "done", utcnow(), msg.output, None
        state.artefacts.extend(msg.artefacts)
        out = Transition(state)
        self._event(out, "step-done", step=msg.step, detail={
            "output": msg.output,
            "artefacts": [a.file.model_dump(mode="json") for a in msg.artefacts],
            "keys": self._keys(state, msg.step, msg.output),
        })
        self._advance(out, after=msg.step)
        return out

    def on_step_failed(self, state: DocumentState | None, msg: StepFailed) -> Transition:
        if state is None or state.current_task != msg.task_id:
            return self._stale(state)
        step = self._flow(state).step(msg.step)
        rec = state.record(msg.step)
        now = utcnow()
        rec.error, rec.last_failure_at = msg.error, now
        rec.first_failure_at = rec.first_failure_at or now
        state.artefacts.extend(msg.artefacts)
        out = Transition(state)
        self._event(out, "step-failed", step=msg.step,
                    detail={"error": msg.error.model_dump(mode="json"),
                            "attempt": rec.attempts} | _artefacts(msg.artefacts))
        if msg.error.business:
            self._reject(out, step, msg.error)
        elif msg.error.retryable and rec.attempts < step.retry.max_attempts:
            self._dispatch(out, step, delay=step.retry.delay(rec.attempts, self.rng.random()))
        else:
            self._fail(out, step, msg.error, msg.source)
        return out

    def on_step_waiting(self, state: DocumentState | None, msg: StepWaiting) -> Transition:
        if state is None or state.current_task != msg.task_id:
            return self._stale(state)
        step = self._flow(state).step(msg.step)
        rec = state.record(msg.step)
        out = Transition(state)
        started = rec.started_at or utcnow()
        if utcnow() >= started + timedelta(seconds=step.wait.deadline_seconds):
            self._fail(out, step, ErrorInfo(
                error_class="DeadlineExceeded",
                message=f"step {step.name!r} still waiting after its deadline of "
                        f"{step.wait.deadline_seconds:g} s ({msg.note or 'no answer'})"), None)
            return out
        changed = rec.progress != msg.progress or rec.polls == 0 or bool(msg.artefacts)
        rec.progress, rec.polls = msg.progress, rec.polls + 1
        state.artefacts.extend(msg.artefacts)
        state.state = DocState.WAITING
        if changed:
            self._event(out, "step-waiting", step=step.name,
                        detail={"note": msg.note, "progress": msg.progress}
                        | _artefacts(msg.artefacts))
        delay = min(max(msg.poll_after, step.wait.poll_seconds), step.wait.max_poll_seconds)
        self._dispatch(out, step, delay=delay, poll=True)
        return out

    def on_wake(self, state: DocumentState | None, msg: Wake) -> Transition:
        """Poll a waiting step now, with what the wake says merged into its progress; a
        wake for any other situation is ignored (late, duplicated). The poll already
        scheduled still comes, finds a newer task, and is dropped as stale."""
        if state is None or state.state != DocState.WAITING or state.current_step != msg.step:
            return self._stale(state)
        out = Transition(state)
        if msg.progress:
            rec = state.record(msg.step)
            rec.progress = rec.progress | msg.progress
        self._dispatch(out, self._flow(state).step(msg.step), poll=True)
        return out

    def on_task_due(self, state: DocumentState | None, msg: TaskDue) -> Transition:
        """Send a delayed task on now, if it is still the document's current one."""
        if state is None or state.state.terminal or state.current_task != msg.task.task_id:
            return self._stale(state)
        out = Transition(state, changed=False)
        out.tasks.append(msg.task)
        return out

    def on_operator(self, state: DocumentState | None, msg: OperatorAction) -> Transition:
        if msg.action == "purge":
            return self._purge(state, msg)
        detail = {"actor": msg.actor, "reason": msg.reason, "dlq_id": msg.dlq_id}
        kind = "discarded" if msg.action == "discard" else "replayed"
        if state is None or state.envelope is None:  # a dead letter with no document
            out = Transition(state or DocumentState(doc_id=msg.doc_id), changed=False)
            self._event(out, kind, detail=detail, actor=msg.actor)
            return out
        out = Transition(state)
        if msg.action == "discard":
            self._event(out, kind, detail=detail, actor=msg.actor)
            return out
        refusal = self._replay_refusal(state, msg)
        if refusal:
            self._event(out, "replay-refused", detail=detail | {"why": refusal}, actor=msg.actor)
            return out
        name = msg.from_step or self._failed_step(state)
        assert name is not None
        state.error = None
        state.steps.append(StepRecord(name=name))
        self._event(out, kind, step=name, detail=detail | {"from_step": name}, actor=msg.actor)
        self._dispatch(out, self._flow(state).step(name))
        return out

    def on_poison(self, state: DocumentState | None, msg: RouterMessage,
                  error: ErrorInfo) -> Transition:
        """A message the router could not apply: its document goes to ``error`` and to the
        dead letters with ``error`` (a document not started yet is built from the
        message's envelope; a finished one or one without envelope gets the letter only)."""
        env = state.envelope if state is not None else getattr(msg, "envelope", None)
        if state is None:
            state = DocumentState(doc_id=msg.doc_id, envelope=env, state=DocState.RUNNING)
        if state.state.terminal or env is None:
            out = Transition(state, changed=False)
            out.dead_letters.append(DeadLetter(
                doc_id=msg.doc_id, tenant=env.tenant if env else None,
                flow=env.flow if env else None, step=state.current_step,
                error=ErrorInfo.model_validate(scrub_for(env, self.flows, error.model_dump()))))
            return out
        flow = self._flow(state)
        out = Transition(state)
        self._fail(out, flow.step(state.current_step or flow.steps[0].name), error,
                   getattr(msg, "source", None))
        return out

    def on_configuration(self, state: DocumentState | None,
                         msg: ConfigurationLoaded) -> Transition:
        """Journal a router starting with another flows/tenants configuration than last time."""
        if state is not None and state.config_digest == msg.digest:
            return Transition(state, changed=False)
        state = state or DocumentState(doc_id=msg.doc_id, state=DocState.COMPLETED)
        previous = state.config_digest
        state.config_digest = msg.digest
        out = Transition(state)
        self._event(out, "configuration-changed", actor=msg.router or "router", detail={
            "digest": msg.digest, "previous": previous, "parts": msg.parts})
        return out

    def _purge(self, state: DocumentState | None, msg: OperatorAction) -> Transition:
        """Files and personal data of a finished document out (``bus.purge``), journaled."""
        if state is None or state.envelope is None or state.purged is not None:
            return self._stale(state)  # unknown, or purged already (a redelivery)
        out, why = Transition(state), purge.refusal(state)
        detail = {"why": why} if why else purge.purge(state, msg, self.flows)
        self._event(out, "purge-refused" if why else "purged", detail=detail, actor=msg.actor)
        return out

    def _keys(self, state: DocumentState, step: str | None, data: dict) -> dict:
        return extract_keys(self._flow(state).search_keys, data, step=step,
                            hasher=self.key_hasher)

    def _replay_refusal(self, state: DocumentState, msg: OperatorAction) -> str | None:
        assert state.envelope is not None
        if state.state != DocState.ERROR:
            return f"document is {state.state.value}; only documents in error are replayed"
        names = [s.name for s in self._flow(state).steps]
        if msg.from_step is not None and msg.from_step not in names:
            return f"flow {state.envelope.flow!r} has no step {msg.from_step!r}"
        if msg.from_step is None and self._failed_step(state) is None:
            return "no failed step to resume at: give --from-step"
        return None

    @staticmethod
    def _failed_step(state: DocumentState) -> str | None:
        for rec in reversed(state.steps):
            if rec.status == "failed":
                return rec.name
        return None

    def _reject(self, out: Transition, step: StepDefinition, error: ErrorInfo) -> None:
        """A business refusal: the document ends ``rejected`` (no retry, no dead letter)."""
        state = out.state
        rec = state.record(step.name)
        rec.status, rec.finished_at, rec.error = "failed", utcnow(), error
        state.state, state.error = DocState.REJECTED, error
        state.current_step = state.current_task = None
        state.chained = []
        self._event(out, "rejected", step=step.name,
                    detail={"reason": error.message, "error": error.model_dump(mode="json")})

    def _fail(self, out: Transition, step: StepDefinition, error: ErrorInfo,
              source: MessageSource | None) -> None:
        """Put the document in error and dead-letter it with its full context."""
        state = out.state
        rec = state.record(step.name)
        rec.status, rec.finished_at, rec.error = "failed", utcnow(), error
        state.state, state.error = DocState.ERROR, error
        state.current_step = state.current_task = None
        state.chained = []
        env = state.envelope
        letter = DeadLetter(
            doc_id=state.doc_id, tenant=env.tenant if env else None,
            flow=env.flow if env else None, step=step.name, source=source,
            attempts=rec.attempts, first_failure_at=rec.first_failure_at or utcnow(),
            error=ErrorInfo.model_validate(scrub_for(env, self.flows, error.model_dump())))
        out.dead_letters.append(letter)
        self._event(out, "error", step=step.name,
                    detail={"error": error.model_dump(mode="json"), "dlq_id": letter.dlq_id})

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
                self._dispatch(out, step, chained=_take_chained(state, step.name))
                return
            rec = state.record(step.name)
            rec.status, rec.finished_at = "skipped", utcnow()
            self._event(out, "step-skipped", step=step.name, detail={"reason": skip})
            name = flow.successor(name)
        state.state, state.current_step, state.current_task = DocState.COMPLETED, None, None
        state.chained = []
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

    def _dispatch(self, out: Transition, step: StepDefinition, *, delay: float = 0.0,
                  poll: bool = False, chained: ChainedStep | None = None) -> None:
        """Issue the next task of ``step`` (after ``delay`` seconds through a delay topic),
        with the chainable steps after it; ``chained``: ``step`` was issued with the
        task before, whose worker runs it (its task is only held, see ``_sent``)."""
        state = out.state
        assert state.envelope is not None
        rec = state.record(step.name)
        rec.status = "running"
        if not poll:
            rec.attempts += 1
        rec.started_at = rec.started_at or utcnow()
        rec.idempotency_key = _step_key(state, step.name)
        if chained is None:
            task_id = _new_task_id(state)
            state.chained = [] if poll else self._chain_after(state, step)
        else:
            task_id = chained.task_id
        task = step_task(state, step, task_id)
        rec.task_id = task.task_id
        state.current_step, state.current_task = step.name, task.task_id
        if not poll:
            state.state = DocState.RUNNING
        if chained is None:
            out.tasks.append(task)
        else:
            out.held = task
        if delay > 0:
            out.delays[task.task_id] = delay
        if poll:  # polls are not journaled one by one
            return
        self._event(out, "step-started", step=step.name,
                    detail={"task_id": task.task_id, "attempt": rec.attempts,
                            "delay_s": round(delay, 3)} | ({"chained": True} if chained else {}))

    def _chain_after(self, state: DocumentState, step: StepDefinition) -> list[ChainedStep]:
        """The chainable steps after ``step`` up to the first that is not (steps skipped
        in between stay skipped), each with the task it will have."""
        if step.kind not in self.chainable:
            return []
        assert state.envelope is not None
        flow, tenant = self._flow(state), self.tenants.get(state.envelope.tenant)
        chain: list[ChainedStep] = []
        name = flow.successor(step.name)
        while name is not None:
            nxt = flow.step(name)
            if self._skip_reason(nxt, state, tenant.settings, set(tenant.connectors)) is None:
                if nxt.kind not in self.chainable:
                    break
                rec = state.latest(name)
                chain.append(ChainedStep(
                    step=name, kind=nxt.kind, task_id=_new_task_id(state),
                    attempt=(rec.attempts if rec else 0) + 1,
                    idempotency_key=_step_key(state, name),
                    progress=rec.progress if rec else {}))
            name = flow.successor(name)
        return chain

    def _event(self, out: Transition, kind: str, step: str | None = None,
               detail: dict | None = None, actor: str = "router") -> None:
        state = out.state
        state.seq += 1
        state.updated_at = utcnow()
        env = state.envelope
        event = JournalEvent(
            event_id=f"{state.doc_id}:{state.seq}", doc_id=state.doc_id, seq=state.seq,
            tenant=env.tenant if env else None, flow=env.flow if env else None,
            type=kind, state=state.state, step=step, at=state.updated_at,
            actor=actor, detail=scrub_for(env, self.flows, detail or {}),
            prev_hash=state.chain_head,
        )
        event.hash = state.chain_head = event_hash(event.model_dump(mode="json"))
        out.events.append(event)

    def _redeliver(self, state: DocumentState) -> Transition:
        """A message seen before: re-send the task in flight (workers are idempotent)."""
        out = Transition(state, changed=False)
        if state.state.terminal or state.current_step is None or state.envelope is None:
            return out
        step = self._flow(state).step(state.current_step)
        out.tasks.append(step_task(state, step, state.current_task or ""))
        return out

    def _stale(self, state: DocumentState | None) -> Transition:
        if state is None:
            return Transition(DocumentState(doc_id="?"), changed=False)
        return Transition(state, changed=False)

"""Messages on the bus topics and the document state the router keeps.

Every message is keyed by document id. Files never travel here: only ``FileRef``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from schemas.envelope import Envelope, FileRef, utcnow
from schemas.ids import new_id
from schemas.text import MultiLine, SingleLine


class DocState(StrEnum):
    RECEIVED = "received"
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    ERROR = "error"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {DocState.COMPLETED, DocState.ERROR, DocState.REJECTED, DocState.DUPLICATE}
)


class ErrorInfo(BaseModel):
    """What went wrong, in words an operator can act on."""

    error_class: str
    message: str
    retryable: bool = False
    field: str | None = None
    traceback: str | None = None
    business: bool = False  # a partner's business refusal: the document ends ``rejected``


class Artefact(BaseModel):
    """A file a step produced or received (generated message, partner reply, receipt)."""

    file: FileRef
    step: str
    kind: str  # e.g. "generated", "partner-reply", "receipt", "signed"
    at: datetime = Field(default_factory=utcnow)


# --- submit topic -----------------------------------------------------------------


class SubmitMessage(BaseModel):
    """Producer -> intake: a new document whose files are already in the object store."""

    type: Literal["submit"] = "submit"
    envelope: Envelope


# --- step topics ------------------------------------------------------------------


class ChainedStep(BaseModel):
    """A step the router issued together with the one before it (see ``StepTask.then``):
    the worker runs it right after that one succeeds, with these task fields."""

    step: str
    kind: str
    task_id: str
    attempt: int = 1
    idempotency_key: str = ""
    progress: dict[str, Any] = Field(default_factory=dict)


class StepTask(BaseModel):
    """Router -> step worker: run one step of one document (and ``then`` the steps chained
    after it, each once the one before succeeded; their results come back together)."""

    task_id: str = Field(default_factory=new_id)
    doc_id: str
    step: str
    kind: str
    attempt: int = 1
    envelope: Envelope
    outputs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    progress: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str = ""
    issued_at: datetime = Field(default_factory=utcnow)
    then: list[ChainedStep] = Field(default_factory=list)


# --- router topic -----------------------------------------------------------------


class Accepted(BaseModel):
    """Intake -> router: a valid submission to start."""

    type: Literal["accepted"] = "accepted"
    doc_id: str
    envelope: Envelope


class Refused(BaseModel):
    """Intake -> router: a submission that cannot start (invalid or a duplicate key)."""

    type: Literal["refused"] = "refused"
    doc_id: str
    envelope: Envelope | None = None
    state: Literal["rejected", "duplicate"] = "rejected"
    error: ErrorInfo
    duplicate_of: str | None = None


class StepDone(BaseModel):
    """Worker -> router: the step finished."""

    type: Literal["step-done"] = "step-done"
    doc_id: str
    task_id: str
    step: str
    output: dict[str, Any] = Field(default_factory=dict)
    artefacts: list[Artefact] = Field(default_factory=list)


class MessageSource(BaseModel):
    """Where a message was read: topic, partition, offset."""

    topic: str
    partition: int
    offset: int


class StepFailed(BaseModel):
    """Worker -> router: the step failed; the router decides retry or error."""

    type: Literal["step-failed"] = "step-failed"
    doc_id: str
    task_id: str
    step: str
    error: ErrorInfo
    source: MessageSource | None = None
    artefacts: list[Artefact] = Field(default_factory=list)  # e.g. the partner's refusal


class StepWaiting(BaseModel):
    """Worker -> router: the partner answers later; poll again after ``poll_after`` seconds."""

    type: Literal["step-waiting"] = "step-waiting"
    doc_id: str
    task_id: str
    step: str
    poll_after: float = Field(ge=0)
    progress: dict[str, Any] = Field(default_factory=dict)
    note: str = ""
    artefacts: list[Artefact] = Field(default_factory=list)  # what arrived meanwhile


class StepResults(BaseModel):
    """Worker -> router: the results of a task and of the chained steps it ran after it,
    in order (it stops at the first that did not succeed)."""

    type: Literal["step-results"] = "step-results"
    doc_id: str
    results: list[StepDone | StepFailed | StepWaiting] = Field(min_length=1)


class OperatorAction(BaseModel):
    """Operator -> router: replay a document in error, discard its dead letter, or purge
    a terminal document past its retention (``policy``: the rule that made it due)."""

    type: Literal["operator"] = "operator"
    doc_id: str
    action: Literal["replay", "discard", "purge"]
    actor: SingleLine = Field(min_length=1, max_length=200)
    reason: MultiLine = Field(default="", max_length=2000)
    dlq_id: str | None = None
    from_step: str | None = None
    policy: dict[str, Any] = Field(default_factory=dict)


class Wake(BaseModel):
    """Worker or service -> router: what a waiting step waits for has happened (its lot
    was received, its batch answered): run the step now instead of at its next poll."""

    type: Literal["wake"] = "wake"
    doc_id: str
    step: str
    reason: str = ""
    # what the waker knows of this document's outcome (a lot's receipt entry, a batch's
    # reply), merged into the step's progress: the woken step finishes without reading
    # it back from the object store. Never personal data: progress is journaled.
    progress: dict[str, Any] = Field(default_factory=dict)


class TaskDue(BaseModel):
    """Router -> delay topic -> router: a task issued with a delay (a retry's back-off, a
    waiting step's next poll), back when due. The router sends it on only if it is still
    the document's current task: a poll made stale by a wake is dropped there, not run."""

    type: Literal["task-due"] = "task-due"
    doc_id: str
    task: StepTask


class ConfigurationLoaded(BaseModel):
    """Router -> router at start-up: the digest of the flows and tenants it runs."""

    type: Literal["configuration"] = "configuration"
    doc_id: str = "bus:configuration"
    digest: str
    parts: dict[str, str] = Field(default_factory=dict)  # "flow:x" / "tenant:y" -> digest
    router: str = ""


RouterMessage = Annotated[
    Accepted | Refused | StepDone | StepFailed | StepWaiting | StepResults | OperatorAction
    | ConfigurationLoaded | Wake | TaskDue,
    Field(discriminator="type"),
]


class DeadLetter(BaseModel):
    """A message or document the bus gave up on, with everything needed to act on it."""

    dlq_id: str = Field(default_factory=new_id)
    doc_id: str | None = None
    tenant: str | None = None
    flow: str | None = None
    step: str | None = None
    source: MessageSource | None = None
    attempts: int = 0
    first_failure_at: datetime | None = None
    last_failure_at: datetime = Field(default_factory=utcnow)
    error: ErrorInfo
    raw: str | None = None  # base64 of an undecodable message


# --- state and journal ------------------------------------------------------------


class StepRecord(BaseModel):
    """What happened to one step of one document."""

    name: str
    status: Literal["running", "done", "failed", "skipped"] = "running"
    attempts: int = 0
    task_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    output: dict[str, Any] = Field(default_factory=dict)
    progress: dict[str, Any] = Field(default_factory=dict)
    polls: int = 0
    first_failure_at: datetime | None = None
    last_failure_at: datetime | None = None
    error: ErrorInfo | None = None
    idempotency_key: str | None = None


class Purged(BaseModel):
    """What a purge removed from a document (``bus.purge``): its stored files (SHA-256),
    its personal metadata fields (names); the journal and the proofs stay."""

    at: datetime = Field(default_factory=utcnow)
    actor: str
    files: list[str] = Field(default_factory=list)
    metadata: list[str] = Field(default_factory=list)


class DocumentState(BaseModel):
    """The router's record of one document: the only writer is the router."""

    doc_id: str
    envelope: Envelope | None = None
    state: DocState = DocState.RECEIVED
    seq: int = 0
    current_step: str | None = None
    current_task: str | None = None
    tasks_issued: int = 0
    steps: list[StepRecord] = Field(default_factory=list)
    artefacts: list[Artefact] = Field(default_factory=list)
    error: ErrorInfo | None = None
    duplicate_of: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    chained: list[ChainedStep] = Field(default_factory=list)  # issued with the current task
    chain_head: str | None = None  # hash of the document's last journal event
    config_digest: str | None = None  # only the bus:configuration record: last digest seen
    purged: Purged | None = None  # its retention ended: files and personal data removed

    def latest(self, step: str) -> StepRecord | None:
        """The latest record of ``step``, if it has one."""
        return next((rec for rec in reversed(self.steps) if rec.name == step), None)

    def record(self, step: str) -> StepRecord:
        """The latest record of ``step`` (created if absent)."""
        if (rec := self.latest(step)) is not None:
            return rec
        rec = StepRecord(name=step)
        self.steps.append(rec)
        return rec

    def outputs(self) -> dict[str, dict[str, Any]]:
        return {r.name: r.output for r in self.steps if r.status == "done"}


class JournalEvent(BaseModel):
    """One entry of the journal: a state transition, step result or operator action."""

    event_id: str
    doc_id: str
    seq: int
    tenant: str | None
    flow: str | None
    type: str  # submitted, rejected, step-started, step-done, step-failed, completed, ...
    state: DocState
    step: str | None = None
    at: datetime = Field(default_factory=utcnow)
    actor: str = "router"
    detail: dict[str, Any] = Field(default_factory=dict)
    prev_hash: str | None = None  # hash of the document's previous event (bus.audit.chain)
    hash: str | None = None  # SHA-256 of this event's canonical JSON without ``hash``

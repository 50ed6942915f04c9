"""Retention rules per flow and tenant, and ``demat purge``: which finished documents
are past their retention, and their purge through the router.

Rules come from ``DEMAT_RETENTION_FILE`` (YAML)::

    rules:
      - {flow: payslip, keep_days: 1826, after: [ensap, archive]}   # every tenant
      - {flow: payslip, tenant: "216900910", keep_days: 365, after: [ensap, archive]}
      - {keep_days: 3650}                                            # any other document

The most specific rule applies (tenant and flow, then flow, then tenant, then ``*``);
a document no rule covers is kept. A document's clock starts when the last step of
``after`` it ran was done (for a pay slip: ENSAP's and the archive's acknowledgements,
since the archive then holds the record); a listed step it skipped or, completed,
never ran does not hold it back; a listed step that did not finish keeps it forever.
A document in error, rejected or a duplicate starts its clock when it ended.

A purge is an operator action: ``OperatorAction(action="purge")`` to the router, which
alone writes states (``bus.purge``); once the router has journaled ``purged``, the
files no remaining document refers to are deleted from the store (a scan of every
state). Content addressing leaves one race: a new document carrying the very same large
file (over 1 MiB: smaller ones are always rewritten) that is still on its way to the
router (no state yet) when the scan runs finds the file stored, skips its upload and
loses it; ``demat audit verify`` names such a file missing. Purge while that content
cannot be submitted again (a pay slip is one agent's one month).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bus.broker import encode, start_producer
from bus.purge import stored_files
from bus.runtime import Runtime
from schemas.messages import TERMINAL_STATES, DocState, DocumentState, OperatorAction

ANY = "*"


class Rule(BaseModel):
    """How long the documents of a flow (and tenant) are kept once finished."""

    model_config = ConfigDict(extra="forbid")
    flow: str = ANY
    tenant: str = ANY
    keep_days: float = Field(ge=0)
    after: list[str] = Field(default_factory=list)  # steps whose end starts the clock


class RetentionError(ValueError):
    """A retention file that cannot be used (the message names the file and rule)."""


@dataclass
class Rules:
    rules: list[Rule] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path | None) -> Rules:
        if path is None:
            return cls()
        try:
            body = yaml.safe_load(Path(path).read_text()) or {}
            raw = body.get("rules", []) if isinstance(body, dict) else None
            if not isinstance(raw, list):
                raise RetentionError(f"{path}: expected a mapping with a list 'rules'")
            return cls([_rule(path, i, r) for i, r in enumerate(raw, start=1)])
        except (OSError, yaml.YAMLError) as exc:
            raise RetentionError(f"{path}: {exc}") from None

    def rule_for(self, tenant: str, flow: str) -> Rule | None:
        for want in ((tenant, flow), (ANY, flow), (tenant, ANY), (ANY, ANY)):
            found = [r for r in self.rules if (r.tenant, r.flow) == want]
            if found:
                return found[-1]
        return None


def _rule(path: Path, no: int, raw: Any) -> Rule:
    try:
        return Rule.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "rule"
        raise RetentionError(f"{path}: rule {no}: {where}: {err['msg']}") from None


def due_at(state: DocumentState, rule: Rule) -> datetime | None:
    """When the document's retention ends (None: its clock has not started)."""
    if not state.state.terminal:
        return None
    start = state.updated_at
    if state.state == DocState.COMPLETED and rule.after:
        ends = []
        for name in rule.after:
            rec = state.latest(name)
            if rec is None or rec.status == "skipped":
                continue
            if rec.status != "done" or rec.finished_at is None:
                return None
            ends.append(rec.finished_at)
        start = max(ends, default=start)
    return start + timedelta(days=rule.keep_days)


@dataclass
class Candidate:
    """A finished document past its retention."""

    doc_id: str
    tenant: str
    flow: str
    state: str
    due: datetime
    files: int
    rule: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__ | {"due": self.due.isoformat(timespec="seconds")}


def terminal_states(runtime: Runtime, terminal: bool = True) -> list[DocumentState]:
    """The states of the finished documents (``terminal=False``: of the others)."""
    where = "state = ANY(%s)" if terminal else "NOT (state = ANY(%s))"
    rows = runtime.database.run(lambda db: db.execute(
        f"SELECT record FROM document_states WHERE {where} ORDER BY doc_id",
        ([s.value for s in TERMINAL_STATES],)).fetchall())
    return [DocumentState.model_validate_json(r[0]) for r in rows]


def candidates(runtime: Runtime, rules: Rules, now: datetime) -> list[Candidate]:
    """The documents to purge now under ``rules`` (not purged yet)."""
    found = []
    for state in terminal_states(runtime):
        env = state.envelope
        if env is None or state.purged is not None:
            continue
        rule = rules.rule_for(env.tenant, env.flow)
        due = due_at(state, rule) if rule is not None else None
        if due is not None and due <= now:
            found.append(Candidate(state.doc_id, env.tenant, env.flow, state.state.value, due,
                                   len(stored_files(state)), rule.model_dump()))
    return found


async def send_purges(runtime: Runtime, found: list[Candidate], actor: str,
                      reason: str) -> None:
    """One purge order a document, to the router."""
    producer = await start_producer(runtime.settings)
    try:
        for c in found:
            msg = OperatorAction(doc_id=c.doc_id, action="purge", actor=actor, reason=reason,
                                 policy=c.rule | {"due": c.due.isoformat()})
            await producer.send_and_wait(runtime.topics.router, encode(msg),
                                         key=c.doc_id.encode())
    finally:
        await producer.stop()


def wait_purged(runtime: Runtime, doc_ids: list[str], timeout: float) -> list[str]:
    """Until the router has purged each document; those it has not (yet)."""
    deadline, left = time.monotonic() + timeout, list(doc_ids)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        done = {d for d in left if (s := runtime.states.load_sync(d)) and s.purged}
        left = [d for d in left if d not in done]
    return left


def delete_files(runtime: Runtime) -> int:
    """Delete the files of purged documents that no other document refers to
    (idempotent: a purge cut short is finished by the next one); how many."""
    kept, gone = set(), set()
    for state in terminal_states(runtime) + terminal_states(runtime, False):
        tenant = state.envelope.tenant if state.envelope else ""
        target = gone if state.purged is not None else kept
        target.update((tenant, sha) for sha in stored_files(state))
    store = runtime.store
    doomed = sorted(gone - kept)
    for tenant, sha in doomed:
        store.client.remove_object(store.bucket, store.file_key(tenant, sha))
    return len(doomed)


def purge_now(runtime: Runtime, found: list[Candidate], actor: str, reason: str,
              timeout: float = 120) -> dict[str, Any]:
    """Purge ``found`` through the router, then delete the files left unreferenced."""
    asyncio.run(send_purges(runtime, found, actor, reason))
    late = wait_purged(runtime, [c.doc_id for c in found], timeout)
    return {"purged": len(found) - len(late), "not_purged": late,
            "deleted_files": delete_files(runtime)}

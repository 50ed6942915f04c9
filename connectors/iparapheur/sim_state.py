"""The i-Parapheur simulator's folders: their workflow, PREMIS summary and ZIP export.

Life-cycle: created as a draft (a pending START task), started (``PENDING``), each
workflow task done after the folder's pace (visa, signature, seal; an external signature
waits for its one-time code), then ``FINISHED`` (the ARCHIVE task is reached, on the
creating desk) or ``REJECTED`` (a REJECT task performed, then DELETE reached). Signature
tasks really sign the main documents with simulator-owned demo keys (one per signer):
PAdES for PDF, XAdES (per bordereau for PES) for XML, detached CMS for other files.

Simulator-only conventions (folder metadata, never sent by production flows):
``sim_reject`` (reason: the folder is rejected at task ``sim_reject_step``, default the
last one), ``sim_step_seconds`` (this folder's pace).
"""

from __future__ import annotations

import itertools
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.iparapheur import bundle
from connectors.iparapheur.premis import Event, Premis, PremisFile
from connectors.pdfgen import text_pdf

TENANT_ID = "b7a0f6d2-0000-4000-8000-000000000001"
TENANT_NAME = "Démo"
DESK_ID = "d35c0000-0000-4000-8000-000000000001"
DESK_NAME = "Bus demat"
TYPE_ID = "7e1c0000-0000-4000-8000-0000000000a1"
TYPE_NAME = "DEMAT"
BUS_USER_ID = "5f020000-0000-4000-8000-00000000b05e"

# sub-type name -> workflow tasks (action, desk, acting user)
WORKFLOWS: dict[str, list[tuple[str, str, str]]] = {
    "signature": [("SIGNATURE", "Maire de Démo-sur-Rhône", "Jeanne Martin")],
    "visa-signature": [("VISA", "Directeur général des services", "Paul Durand"),
                       ("SIGNATURE", "Maire de Démo-sur-Rhône", "Jeanne Martin")],
    "double-signature": [("SIGNATURE", "Autorité territoriale", "Claire Petit"),
                         ("SIGNATURE", "Agent", "Luc Bernard")],
    "external": [("EXTERNAL_SIGNATURE", "Signataire externe", "Signataire externe")],
    "seal": [("SEAL", "Cachet de la collectivité", "Cachet de la collectivité")],
}
SUBTYPE_IDS = {name: f"5b7e0000-0000-4000-8000-{i:012d}" for i, name in enumerate(WORKFLOWS)}
SIGNING_ACTIONS = {"SIGNATURE", "EXTERNAL_SIGNATURE", "SEAL"}
_order = itertools.count()


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def user_id(user: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"iparapheur-sim:{user}"))


@dataclass
class SimDocument:
    id: str
    name: str
    media_type: str
    data: bytes
    main: bool
    detached: list[tuple[str, bytes]] = field(default_factory=list)  # name, CMS


@dataclass
class SimStep:
    action: str
    desk: str
    user: str
    task_id: str = ""  # set once the task becomes current
    state: str = "UPCOMING"  # UPCOMING, CURRENT, VALIDATED, REJECTED
    started: float | None = None
    date: str = ""
    annotation: str = ""
    otp: str | None = None


@dataclass
class SimFolder:
    id: str
    name: str
    subtype: str
    metadata: dict[str, str]
    documents: list[SimDocument]
    steps: list[SimStep]
    state: str = "DRAFT"  # DRAFT, PENDING, FINISHED, REJECTED
    start_task: str = field(default_factory=lambda: str(uuid.uuid4()))
    start_date: str = ""
    end_task: str = field(default_factory=lambda: str(uuid.uuid4()))
    order: int = field(default_factory=lambda: next(_order))

    def representation(self) -> dict[str, Any]:
        """FolderRepresentation of the standard API."""
        return {"id": self.id, "name": self.name, "dueDate": None, "metadata": self.metadata}

    def current(self) -> tuple[int, SimStep] | None:
        return next(((i, s) for i, s in enumerate(self.steps) if s.state == "CURRENT"), None)

    # --- life-cycle -------------------------------------------------------------------

    def begin(self, metadata: dict[str, str] | None = None) -> None:
        self.metadata |= metadata or {}
        self.state, self.start_date = "PENDING", now()
        self._begin(0)

    def _begin(self, index: int) -> None:
        step = self.steps[index]
        step.state, step.started, step.task_id = "CURRENT", time.monotonic(), str(uuid.uuid4())
        if step.action == "EXTERNAL_SIGNATURE":
            step.otp = f"{secrets.randbelow(10**6):06d}"  # "sent" to the external signer

    def due(self, default_pace: float) -> tuple[int, SimStep] | None:
        """The current task if its signer acts now."""
        found = self.current() if self.state == "PENDING" else None
        if found is None:
            return None
        pace = float(self.metadata.get("sim_step_seconds", default_pace))
        _, step = found
        if step.action == "EXTERNAL_SIGNATURE" and step.otp is not None:
            return None  # waits for the one-time code
        return found if time.monotonic() - (step.started or 0) >= pace else None

    def rejects_at(self, index: int) -> str:
        reason = self.metadata.get("sim_reject", "")
        at = int(self.metadata.get("sim_reject_step", len(self.steps) - 1))
        return reason if reason and index == at else ""

    def close(self, index: int, step: SimStep, reason: str) -> None:
        step.date = now()
        if reason:
            step.state, step.annotation, self.state = "REJECTED", reason, "REJECTED"
            return
        step.state = "VALIDATED"
        if index + 1 < len(self.steps):
            self._begin(index + 1)
        else:
            self.state = "FINISHED"

    # --- what the API shows -----------------------------------------------------------

    def premis(self) -> Premis:
        """The folder's PREMIS summary (as ``.../premis`` and the ZIP give it)."""
        bus = user_id("demat-bus")
        events = [Event(self.start_task, "START", self.start_date,
                        bus if self.start_date else "", DESK_NAME, "")]
        agents = {bus: "demat-bus"} if self.start_date else {}
        for step in self.steps:
            done = step.state in ("VALIDATED", "REJECTED")
            action = "REJECT" if step.state == "REJECTED" else step.action
            events.append(Event(step.task_id, action, step.date,
                                user_id(step.user) if done else "", step.desk,
                                step.annotation))
            if done:
                agents[user_id(step.user)] = step.user
            if step.state == "REJECTED":
                break
        ended = self.state in ("FINISHED", "REJECTED")
        events.append(Event(self.end_task if ended else "",
                            "DELETE" if self.state == "REJECTED" else "ARCHIVE", "", "",
                            DESK_NAME, ""))
        return Premis(name=self.name, type=TYPE_ID, subtype=SUBTYPE_IDS[self.subtype],
                      folder_id=self.id, metadata=dict(self.metadata), events=events,
                      agents=agents,
                      files=[PremisFile(d.name, d.main, d.id, bool(d.detached))
                             for d in self.documents])

    def zip(self) -> bytes:
        summary = self.premis()
        return bundle.write(summary,
                            {d.name: d.data for d in self.documents if d.main},
                            {d.name: d.data for d in self.documents if not d.main},
                            {n: cms for d in self.documents for n, cms in d.detached},
                            slip(self, summary))


def slip(folder: SimFolder, summary: Premis) -> bytes:
    """A one-page PDF signature slip (the ``_bordereau.pdf`` of the ZIP)."""
    lines = [f"Bordereau de signature - dossier {folder.name}",
             f"Type {TYPE_NAME} / sous-type {folder.subtype} - etat {folder.state}"]
    lines += [f"{e.action} {summary.agent(e)} ({e.desk}) {e.date}"
              for e in summary.performed()]
    return text_pdf(lines)


"""What a step handler receives and returns: the contract between the steps service and
the step kinds that flow families register (``workers.step`` builds on it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bus.runtime import Runtime
from bus.tenants import Tenant
from schemas.flow import StepDefinition
from schemas.messages import Artefact, StepTask


@dataclass
class StepResultData:
    """What a step function returns when it succeeds."""

    output: dict[str, Any] = field(default_factory=dict)
    artefacts: list[Artefact] = field(default_factory=list)


@dataclass
class Waiting:
    """What a step function returns when the partner answers later: poll again."""

    poll_after: float
    progress: dict[str, Any] = field(default_factory=dict)
    note: str = ""


class StepError(Exception):
    """A step refuses the document for good (bad content): no retry."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class StepRejected(Exception):
    """A partner refused the document on business grounds (signer rejected it...): the
    document ends ``rejected`` with ``reason``; neither a retry nor an error."""

    def __init__(self, reason: str, *, partner: str = "") -> None:
        super().__init__(reason)
        self.partner = partner


@dataclass
class StepCall:
    """One execution of a step: the task, its tenant and step definition, and the
    artefacts kept so far (reported with the result, whether it succeeds or fails)."""

    runtime: Runtime
    task: StepTask
    tenant: Tenant
    step: StepDefinition
    artefacts: list[Artefact] = field(default_factory=list)

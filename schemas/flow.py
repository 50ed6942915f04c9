"""Declarative flow definitions: a flow is data (an ordered graph of typed steps)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.search_keys import SearchKey, check_search_keys


class RetryPolicy(BaseModel):
    """How a failing step is retried before its document is put in error."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=5, ge=1)
    backoff_seconds: float = Field(default=1.0, ge=0)
    backoff_factor: float = Field(default=2.0, ge=1)
    max_delay_seconds: float = Field(default=300.0, ge=0)
    jitter: float = Field(default=0.2, ge=0, le=1)
    timeout_seconds: float = Field(default=120.0, gt=0)

    def delay(self, attempt: int, draw: float = 0.5) -> float:
        """Delay before attempt ``attempt + 1`` (``draw`` in [0, 1) spreads the jitter)."""
        base = min(self.backoff_seconds * self.backoff_factor ** (attempt - 1),
                   self.max_delay_seconds)
        return max(0.0, base * (1 + self.jitter * (2 * draw - 1)))


class WaitPolicy(BaseModel):
    """How a waiting step polls its partner, and when it gives up."""

    model_config = ConfigDict(extra="forbid")

    poll_seconds: float = Field(default=60.0, ge=0)
    max_poll_seconds: float = Field(default=3600.0, ge=0)
    deadline_seconds: float = Field(default=30 * 24 * 3600.0, gt=0)


class Condition(BaseModel):
    """A test on the document's metadata (``meta.x``) or its tenant's settings (``tenant.x``)."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(pattern=r"^(meta|tenant)\.[A-Za-z0-9_.]+$")
    op: Literal["eq", "ne", "in", "contains", "truthy", "falsy", "present", "absent"] = "truthy"
    value: Any = None

    def holds(self, meta: dict[str, Any], tenant: dict[str, Any]) -> bool:
        scope, _, path = self.field.partition(".")
        found, actual = _lookup(meta if scope == "meta" else tenant, path)
        match self.op:
            case "present":
                return found
            case "absent":
                return not found
            case "truthy":
                return bool(actual)
            case "falsy":
                return not actual
            case "eq":
                return actual == self.value
            case "ne":
                return actual != self.value
            case "in":
                return actual in (self.value or [])
            case "contains":  # the metadata value is a list holding ``value``
                return isinstance(actual, list) and self.value in actual
        return False


def _lookup(data: dict[str, Any], path: str) -> tuple[bool, Any]:
    current: Any = data
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return False, None
        current = current[part]
    return True, current


class StepDefinition(BaseModel):
    """One step of a flow: a kind of work, its partner connector and when it runs."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    kind: str
    connector: str | None = None
    optional: bool = False
    when: list[Condition] = Field(default_factory=list)
    next: str | None = None
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    wait: WaitPolicy = Field(default_factory=WaitPolicy)
    options: dict[str, Any] = Field(default_factory=dict)

    def applies(self, meta: dict[str, Any], tenant: dict[str, Any]) -> bool:
        """True when every condition holds for this document and tenant."""
        return all(c.holds(meta, tenant) for c in self.when)


class FileLimits(BaseModel):
    """Bounds of one submission of a flow, checked before its files are uploaded (SDK,
    CLI, API uploads) and again at intake; a tenant may tighten them (``bus.intake``)."""

    model_config = ConfigDict(extra="forbid")

    max_files: int = Field(default=100, ge=1)
    max_file_bytes: int = Field(default=4 * 1024**3, ge=1)
    max_total_bytes: int = Field(default=8 * 1024**3, ge=1)
    max_metadata_bytes: int = Field(default=256 * 1024, ge=2)  # of its JSON (UTF-8)


class FlowDefinition(BaseModel):
    """A document type: its metadata model and its steps, in order."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    version: int = Field(default=1, ge=1)
    description: str = ""
    metadata_model: str
    steps: list[StepDefinition] = Field(min_length=1)
    search_keys: dict[str, SearchKey] = Field(default_factory=dict)  # see schemas.search_keys
    encrypt_files: bool = False  # files and artefacts encrypted at rest (bus.crypto)
    limits: FileLimits = Field(default_factory=FileLimits)
    # an internal flow's documents are made by the bus itself: only ``producers`` submit them
    internal: bool = False
    producers: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_graph(self) -> FlowDefinition:
        names = [s.name for s in self.steps]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"flow {self.name!r}: step names repeated: {sorted(dupes)}")
        for step in self.steps:
            if step.next is not None and step.next not in names:
                raise ValueError(
                    f"flow {self.name!r}, step {step.name!r}: next step {step.next!r} is unknown"
                )
        cycle = self._find_cycle()
        if cycle:
            raise ValueError(f"flow {self.name!r}: steps form a cycle: {' -> '.join(cycle)}")
        check_search_keys(self.name, self.search_keys, names)
        if self.internal != bool(self.producers):
            raise ValueError(f"flow {self.name!r}: an internal flow names the producers "
                             "allowed to submit it (producers), and only an internal one")
        return self

    def admits(self, producer: str) -> bool:
        """Whether ``producer`` may submit documents of this flow."""
        return not self.internal or producer in self.producers

    def step(self, name: str) -> StepDefinition:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"flow {self.name!r} has no step {name!r}")

    def successor(self, name: str) -> str | None:
        """The step that follows ``name`` (its ``next``, else the next one listed)."""
        step = self.step(name)
        if step.next is not None:
            return step.next
        index = [s.name for s in self.steps].index(name)
        return self.steps[index + 1].name if index + 1 < len(self.steps) else None

    def _find_cycle(self) -> list[str] | None:
        for start in self.steps:
            seen = [start.name]
            current = self.successor(start.name)
            while current is not None:
                if current in seen:
                    return [*seen[seen.index(current):], current]
                seen.append(current)
                current = self.successor(current)
        return None

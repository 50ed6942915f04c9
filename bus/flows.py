"""Loading and checking the flow definitions (YAML files, one flow each)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from bus.tenants import TenantRegistry
from schemas.flow import FlowDefinition
from schemas.metadata import METADATA_MODELS

FLOWS_DIR = Path(__file__).resolve().parent.parent / "schemas" / "flows"


class FlowConfigError(ValueError):
    """A flow definition or its use by a tenant is wrong; the message names flow and step."""


class FlowRegistry:
    """The flows this bus runs, by name."""

    def __init__(self, flows: list[FlowDefinition]) -> None:
        self._flows = {f.name: f for f in flows}

    @classmethod
    def load(cls, directory: Path = FLOWS_DIR, *extra: Path) -> FlowRegistry:
        """Read every ``*.yaml`` flow of ``directory`` (then of ``extra``); errors name the file."""
        flows = []
        paths = [p for d in (directory, *extra) for p in sorted(Path(d).glob("*.yaml"))]
        for path in paths:
            try:
                flows.append(FlowDefinition.model_validate(yaml.safe_load(path.read_text())))
            except (ValidationError, yaml.YAMLError) as exc:
                raise FlowConfigError(f"flow file {path.name}: {exc}") from exc
        return cls(flows)

    def get(self, name: str) -> FlowDefinition:
        try:
            return self._flows[name]
        except KeyError:
            known = ", ".join(sorted(self._flows))
            raise KeyError(f"unknown flow {name!r} (known flows: {known})") from None

    def names(self) -> list[str]:
        return sorted(self._flows)

    def step_kinds(self) -> set[str]:
        return {s.kind for f in self._flows.values() for s in f.steps}

    def check(self, tenants: TenantRegistry, step_kinds: set[str]) -> None:
        """Raise ``FlowConfigError`` naming the first wrong flow/step/tenant found."""
        for flow in self._flows.values():
            if flow.metadata_model not in METADATA_MODELS:
                raise FlowConfigError(
                    f"flow {flow.name!r}: unknown metadata model {flow.metadata_model!r}"
                )
            for step in flow.steps:
                if step.kind not in step_kinds:
                    raise FlowConfigError(
                        f"flow {flow.name!r}, step {step.name!r}: unknown step kind "
                        f"{step.kind!r} (known: {', '.join(sorted(step_kinds))})"
                    )
                self._check_connector(flow, step, tenants)

    @staticmethod
    def _check_connector(flow: FlowDefinition, step, tenants: TenantRegistry) -> None:
        if step.connector is None or step.optional:
            return
        for tenant in tenants:
            if tenant.uses(flow.name) and step.connector not in tenant.connectors:
                raise FlowConfigError(
                    f"flow {flow.name!r}, step {step.name!r}: tenant {tenant.siren} "
                    f"({tenant.name}) has no {step.connector!r} connector configured"
                )

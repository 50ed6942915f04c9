"""What a step function receives besides its task: tenant, step definition, clients."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from bus.runtime import Runtime
from bus.tenants import Tenant
from connectors.registry import build_connector
from schemas.envelope import FileRole
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
class StepContext:
    """Per-task view of the runtime."""

    runtime: Runtime
    task: StepTask
    tenant: Tenant
    step: StepDefinition
    artefacts: list[Artefact] = field(default_factory=list)

    @property
    def encrypt_files(self) -> bool:
        """Whether this document's flow keeps its files encrypted at rest."""
        return self.runtime.flows.get(self.task.envelope.flow).encrypt_files

    def connector(self) -> Any:
        """The tenant's connector for this step's role (built once per process)."""
        role = self.step.connector
        if role is None or role not in self.tenant.connectors:
            raise StepError(f"step {self.step.name!r}: tenant {self.tenant.siren} has no "
                            f"{role!r} connector")
        return _connector_cache(self.runtime, self.tenant.siren, role)

    async def keep(self, data: bytes, *, name: str, kind: str,
                   media_type: str | None = None, unique: bool = False) -> Artefact:
        """Store ``data`` as an artefact of this step (generated message, reply, receipt);
        ``unique``: its content names this document (see ``ObjectStore.put_bytes``)."""
        ref = await asyncio.to_thread(
            self.runtime.store.put_bytes, self.tenant.siren, data, name=name,
            role=FileRole.ANNEX, media_type=media_type, encrypt=self.encrypt_files,
            unique=unique)
        artefact = Artefact(file=ref, step=self.step.name, kind=kind)
        self.artefacts.append(artefact)
        return artefact


_CONNECTORS: dict[tuple[int, str, str], Any] = {}


def tenant_connector(runtime: Runtime, tenant: str, role: str) -> Any:
    """The connector serving ``role`` for ``tenant`` (built once per process)."""
    return _connector_cache(runtime, tenant, role)


def _connector_cache(runtime: Runtime, tenant: str, role: str) -> Any:
    key = (id(runtime), tenant, role)
    if key not in _CONNECTORS:
        cfg = runtime.tenants.get(tenant).connectors[role]
        _CONNECTORS[key] = build_connector(cfg.type, cfg.options, runtime.settings.var_dir)
    return _CONNECTORS[key]

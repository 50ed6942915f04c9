"""What a step function works with: its context, and ``@step`` to register it.

A step kind is a plain ``async def run(ctx: StepContext)`` decorated with
``@step("kind")`` where it is defined; the kind is written once. It returns
``StepResultData`` or ``Waiting`` and raises ``StepError`` (bad content) or
``StepRejected`` (a partner's business refusal); anything else is retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bus.plugins import REGISTRY
from bus.steps import StepCall, StepError, StepRejected, StepResultData, Waiting
from schemas.envelope import FileRef, FileRole
from schemas.messages import Artefact

__all__ = ["StepContext", "StepError", "StepRejected", "StepResultData", "Waiting", "step"]

MAX_IN_MEMORY = 160 * 1024 * 1024  # above the largest flow whose files a step reads whole
StepFunction = Callable[["StepContext"], Awaitable[StepResultData | Waiting]]


@dataclass
class StepContext(StepCall):
    """Per-task view of the runtime, with the helpers step functions share."""

    # which version of each file the step used (``workers.common.versions``)
    used_versions: list[dict[str, Any]] = field(default_factory=list)

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
        return self.runtime.connector(self.tenant.siren, role)

    async def read_file(self, ref: FileRef) -> bytes:
        """A stored file whole and verified, for steps that must hand a partner bytes
        (signing, the ACTES archive); ``StepError`` over ``MAX_IN_MEMORY`` bytes, so no
        file takes a steps worker's memory with it (others stream ``store.iter_file``)."""
        if ref.size > MAX_IN_MEMORY:
            raise StepError(f"file {ref.name!r} has {ref.size} bytes: step "
                            f"{self.step.name!r} holds files of at most {MAX_IN_MEMORY} "
                            "bytes in memory", field="files")
        return await asyncio.to_thread(self.runtime.store.read_file, self.tenant.siren, ref)

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


def step(kind: str, *more_kinds: str, chainable: bool = False
         ) -> Callable[[StepFunction], StepFunction]:
    """Register the decorated function as the step ``kind`` (and ``more_kinds``);
    ``chainable``: see ``Registry.add_step``."""
    def register(run: StepFunction) -> StepFunction:
        async def handler(call: StepCall) -> StepResultData | Waiting:
            ctx = StepContext(call.runtime, call.task, call.tenant, call.step, call.artefacts)
            result = await run(ctx)
            if ctx.used_versions and isinstance(result, StepResultData):
                result.output.setdefault("file_versions", ctx.used_versions)
            return result
        handler.__qualname__ = run.__qualname__
        handler.__module__ = run.__module__
        for name in (kind, *more_kinds):
            REGISTRY.add_step(name, handler, chainable=chainable)
        return run
    return register

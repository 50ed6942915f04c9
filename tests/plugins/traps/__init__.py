"""A test flow family whose intake check and step raise ``TrapSprung``, an exception
class no service of the bus anticipates, when the document's metadata says ``trap``
(``intake`` or ``step``); loaded with ``DEMAT_PLUGINS`` in the test bus. With ``hold``,
the step is refused for good (a dead letter) until the test releases the document
(``release``), as a partner fixed on its side: replayed then, it completes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bus.objectstore import ObjectStore
from bus.plugins import REGISTRY
from connectors.errors import PermanentError
from schemas.envelope import Envelope
from schemas.metadata import registers
from workers.step import StepContext, StepResultData, step

REGISTRY.flows_in(Path(__file__).with_name("flows"))
RELEASED = "tests/traps/released/"


class TrapSprung(Exception):
    """Raised on purpose: nothing in the bus catches this class by name."""


@registers("trap")
class TrapMetadata(BaseModel):
    """Which stage raises (``none``: the document completes)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    trap: Literal["none", "intake", "step", "hold"] = "none"


@REGISTRY.flow_check("trap")
async def check_trap(runtime: Any, env: Envelope, *, at_intake: bool = True) -> None:
    """Raise ``TrapSprung`` at intake when asked to."""
    if at_intake and TrapMetadata.model_validate(env.metadata).trap == "intake":
        raise TrapSprung("intake trap sprung")


@step("trap-spring")
async def spring(ctx: StepContext) -> StepResultData:
    """Raise ``TrapSprung`` when asked to, else succeed."""
    trap = TrapMetadata.model_validate(ctx.task.envelope.metadata).trap
    if trap == "step":
        raise TrapSprung("step trap sprung")
    if trap == "hold" and ctx.runtime.store.get_record(
            f"{RELEASED}{ctx.task.envelope.id}") is None:
        raise PermanentError("held until the test releases it")
    return StepResultData(output={"sprung": False})


def release(store: ObjectStore, doc_id: str) -> None:
    """Let the ``hold`` trap of ``doc_id`` pass from now on."""
    store.put_record(f"{RELEASED}{doc_id}", b"released")

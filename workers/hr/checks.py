"""Intake checks of the HR act flows (``hr-decree``, ``hr-contract``): an act the
prefecture will receive passes the acte checks (tenant ACTES identity, PDF,
classification); the agent file must be configured."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from bus.intake import SubmissionError
from bus.plugins import REGISTRY
from schemas.envelope import Envelope
from schemas.hr import hr_metadata
from workers.actes.checks import check_acte  # declared exception: an HR act is an acte


@REGISTRY.flow_check("hr-decree", "hr-contract")
async def check_hr(runtime: Any, env: Envelope, *, at_intake: bool = True) -> None:
    try:
        meta = hr_metadata(env.flow, env.metadata)
    except ValidationError:
        return  # the metadata model check names the field
    tenant = runtime.tenants.get(env.tenant)
    if "agent-file" not in tenant.connectors:
        raise SubmissionError("tenant", f"tenant {env.tenant} has no 'agent-file' connector "
                              "(the agents' files)")
    if meta.needs_transmission():
        await check_acte(runtime, as_acte(env, meta), at_intake=at_intake)


def as_acte(env: Envelope, meta: Any) -> Envelope:
    """The envelope with its metadata completed by the HR model (nature from the flow)."""
    return env.model_copy(update={"metadata": meta.model_dump(mode="json", exclude_none=True)})

"""Checks of a pay slip beyond its metadata model (run at intake and by ``validate``)."""

from __future__ import annotations

from typing import Any

from bus.intake import SubmissionError, check_own_siret
from bus.plugins import REGISTRY
from schemas.envelope import Envelope

CHANNEL_CONNECTORS = {"ensap": "ensap", "agent-space": "agent-space",
                      "secure-mail": "secure-mail"}


def missing_channels(tenant_connectors: set[str], channels: list[str]) -> list[str]:
    """Channels asked for whose connector the tenant does not have."""
    return [c for c in channels if CHANNEL_CONNECTORS.get(c) not in tenant_connectors]


@REGISTRY.flow_check("payslip")
async def check_payslip(runtime: Any, env: Envelope, *, at_intake: bool = True) -> None:
    """The employer is the tenant; every destination channel must be configured for the
    tenant (else it would be skipped)."""
    tenant = runtime.tenants.get(env.tenant)
    employer = env.metadata.get("employer_siret")
    if isinstance(employer, str):
        check_own_siret(tenant, "metadata.employer_siret", employer, "employer SIRET")
    missing = missing_channels(set(tenant.connectors), list(env.metadata.get("channels", [])))
    if missing:
        raise SubmissionError("metadata.channels", f"tenant {env.tenant} has no connector for "
                              f"channel(s) {', '.join(missing)}")

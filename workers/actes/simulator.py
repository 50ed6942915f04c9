"""The embedded S²LOW simulator, with one account per tenant that uses ``sim:s2low``."""

from __future__ import annotations

import os

from bus.intake import SubmissionError
from bus.settings import get_settings
from bus.tenants import TenantRegistry
from connectors.s2low.simulator import S2lowSimulator
from connectors.simulator import FailurePlan
from schemas.acte import TenantActesSettings
from workers.actes.acte import actes_settings

ROLE, URL = "s2low", "sim:s2low"


def simulator_for_tenants(plan: FailurePlan, tenants: TenantRegistry | None = None
                          ) -> S2lowSimulator:
    """A simulator whose accounts (login -> authority) are the tenants' s2low connectors.

    Its life cycle advances one status every ``DEMAT_SIM_S2LOW_STEP_DELAY`` seconds
    (default 0.2, so the demo's actes are acknowledged within a second or two). The
    accounts also hold the archivist role, as a syndicate may grant the bus's account:
    a PES that S²LOW answers "doublon" for then gets its transaction back.
    """
    tenants = tenants or TenantRegistry.load(get_settings().tenants_path)
    accounts: dict[str, TenantActesSettings] = {}
    users: dict[str, str] = {}
    for tenant in tenants:
        conn = tenant.connectors.get(ROLE)
        if conn is None or conn.options.get("url") != URL or not conn.options.get("login"):
            continue
        try:
            authority = actes_settings(tenant)
        except SubmissionError:
            continue
        accounts[conn.options["login"]] = authority
        users[conn.options["login"]] = str(conn.options.get("password", ""))
    first = next(iter(accounts.values()), None)
    return S2lowSimulator(first, authorities=accounts, users=users or None, failures=plan,
                          archivists=set(users),
                          step_delay=float(os.environ.get("DEMAT_SIM_S2LOW_STEP_DELAY", "0.2")))

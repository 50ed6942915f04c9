"""The prefecture's classification of each tenant, as the bus knows it.

Fetched from S²LOW (``actes_classification_fetch.php``) and cached in the object store
(``actes/classification/<SIREN>.json``) for ``settings.actes.classification_max_age_hours``
(default 24): intake checks every acte against the CURRENT classification without calling
the platform for each document, and a platform outage falls back to the last copy.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from bus.plugins import REGISTRY
from bus.runtime import Runtime
from bus.tenants import Tenant
from connectors.errors import ConnectorError
from schemas.acte import Classification
from schemas.envelope import utcnow

ROLE = "s2low"
DEFAULT_MAX_AGE_HOURS = 24.0


def cache_key(siren: str) -> str:
    return f"actes/classification/{siren}.json"


@REGISTRY.provides("actes.classification")
async def current_classification(runtime: Runtime, tenant: Tenant, *, refresh: bool = False
                                 ) -> Classification | None:
    """The tenant's classification: the cached copy while fresh, else fetched and cached;
    the stale copy when S²LOW cannot answer; ``None`` when nothing is known yet."""
    cached = await asyncio.to_thread(runtime.store.get_json, cache_key(tenant.siren))
    if cached and not refresh and _fresh(cached, tenant):
        return Classification.model_validate(cached["classification"])
    if ROLE not in tenant.connectors:
        return Classification.model_validate(cached["classification"]) if cached else None
    try:
        fetched: Classification = await runtime.connector(tenant.siren, ROLE).get_classification()
    except ConnectorError:
        return Classification.model_validate(cached["classification"]) if cached else None
    await asyncio.to_thread(runtime.store.put_json, cache_key(tenant.siren), {
        "fetched_at": utcnow().isoformat(), "classification": fetched.model_dump(mode="json")})
    return fetched


def _fresh(cached: dict, tenant: Tenant) -> bool:
    hours = float((tenant.settings.get("actes") or {}).get("classification_max_age_hours",
                                                           DEFAULT_MAX_AGE_HOURS))
    fetched = datetime.fromisoformat(cached["fetched_at"])
    return utcnow() - fetched < timedelta(hours=hours)

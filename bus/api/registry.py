"""``/v1/flows`` and ``/v1/tenants``: what the bus runs, as far as the caller may know."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from bus.api.auth import bus_of, permission
from bus.api.documents import Who

router = APIRouter(prefix="/v1", tags=["configuration"])


@router.get("/flows", summary="flow definitions", openapi_extra=permission("authenticated"))
async def flows(request: Request, who: Who) -> dict[str, Any]:
    registry = bus_of(request).client.runtime.flows
    return {"flows": [registry.get(n).model_dump(mode="json") for n in registry.names()]}


@router.get("/tenants", summary="the caller's tenants and roles on each",
            openapi_extra=permission("authenticated"))
async def tenants(request: Request, who: Who) -> dict[str, Any]:
    """Tenants the caller has a role on (directly or through an entity above); never
    their connector settings."""
    registry = bus_of(request).client.runtime.tenants
    return {"tenants": [{"siren": t.siren, "name": t.name, "parent": t.parent,
                         "flows": t.flows, "roles": sorted(who.roles_on(t.siren, registry))}
                        for t in registry if t.siren in who.reaches(registry)]}

"""Who calls: the bearer token of each request, and the tenant checks of the routes."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bus.identity import Identity, Unauthenticated
from schemas.messages import DocumentState

bearer = HTTPBearer(auto_error=False, description="an API token (`demat tokens create`), or "
                     "an access token of the OpenID provider `DEMAT_OIDC_ISSUER` names")


def permission(name: str) -> dict[str, Any]:
    """OpenAPI extension naming the permission a route needs (the isolation tests read it)."""
    return {"x-permission": name}


def bus_of(request: Request) -> Any:
    return request.app.state.bus


async def caller(request: Request,
                 creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
                 ) -> Identity:
    """The authenticated identity, or 401."""
    secret = creds.credentials if creds else None
    try:
        return await asyncio.to_thread(bus_of(request).identities.authenticate, secret)
    except Unauthenticated as exc:
        raise HTTPException(401, {"message": str(exc), "field": "Authorization"},
                            headers={"WWW-Authenticate": "Bearer"}) from None


def not_found(doc_id: str) -> HTTPException:
    """404 that does not even echo the id asked for."""
    return HTTPException(404, {"message": "no such document", "field": "doc_id"})


def forbidden(what: str, tenant: str) -> HTTPException:
    return HTTPException(403, {"message": f"your roles on tenant {tenant} do not allow {what}",
                               "field": "Authorization"})


def sees(who: Identity, state: DocumentState, tenants: Any) -> bool:
    """A document is visible to readers of its tenant, and to the producer who sent it."""
    env = state.envelope
    if env is None:
        return False
    return who.may("read", env.tenant, tenants) or (
        who.may("read-own", env.tenant, tenants) and env.producer == who.producer)


async def visible_state(request: Request, who: Identity, doc_id: str,
                        need: str = "read") -> DocumentState:
    """The document's state if the caller may see it (else 404, never saying it exists),
    and holds ``need`` on its tenant (else 403)."""
    bus = bus_of(request)
    state = await bus.client.status(doc_id) if len(doc_id) <= 200 else None
    tenants = bus.client.runtime.tenants
    if state is None or not sees(who, state, tenants):
        raise not_found(doc_id)
    tenant = state.envelope.tenant
    if need == "read" or who.may(need, tenant, tenants):
        return state
    raise forbidden(need, tenant)

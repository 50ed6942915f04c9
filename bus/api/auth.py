"""Who calls: the bearer token of each request, or a person's session cookie (after an
OpenID Connect login, ``bus.api.login``, or a sign-in to the console with an API token,
``bus.console.signin``, whose session keeps that token's roles); and the tenant checks of
the routes.

A request authenticated by its cookie with an unsafe method (anything but GET, HEAD,
OPTIONS) must also carry the session's CSRF token in the ``X-CSRF-Token`` header
(a synchronizer token: another site's page can neither read it nor set that header).
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from bus.api.limits import retry_after
from bus.identity import Identity, Unauthenticated
from schemas.messages import DocumentState

SESSION_COOKIE, CSRF_COOKIE, CSRF_HEADER = "demat_session", "demat_csrf", "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
bearer = HTTPBearer(auto_error=False, description="an API token (`demat tokens create`), or "
                     "an access token of the OpenID provider `DEMAT_OIDC_ISSUER` names")
session_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="a person's "
                              "session after `/v1/auth/login`; unsafe methods also need the "
                              f"`{CSRF_HEADER}` header (`/v1/auth/me` gives it)")


def permission(name: str) -> dict[str, Any]:
    """OpenAPI extension naming the permission a route needs (the isolation tests read it);
    ``public`` for the few routes anyone may call (health, login)."""
    return {"x-permission": name}


def bus_of(request: Request) -> Any:
    return request.app.state.bus


async def caller(request: Request,
                 creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
                 cookie: Annotated[str | None, Depends(session_cookie)]) -> Identity:
    """The authenticated identity (a bearer token first, else the session cookie), or
    401; 429 past the caller's request budget."""
    bus = bus_of(request)
    if creds is None and cookie:  # sessions: the OpenID login's, or the console's
        who = await session_caller(request, cookie)
    else:
        who = await bearer_caller(request, creds.credentials if creds else None)
    request.state.caller = who.actor  # the security log names who was refused
    if wait := bus.callers.take(who.rate_key):
        raise too_many(wait, f"requests of {who.rate_key}")
    return who


async def bearer_caller(request: Request, secret: str | None) -> Identity:
    """The identity of a bearer secret (recently authenticated ones from the cache).
    Failed authentications spend the client address's budget, and an address without
    any left gets 429 before its secret is even looked up (guessing tokens is slowed;
    known callers from it go on)."""
    bus = bus_of(request)
    who = bus.auth_cache.get(secret) if secret else None
    if who is None:
        address = request.client.host if request.client else "unknown"
        if wait := bus.anonymous.wait(address):
            raise too_many(wait, "failed authentications from your address")
        try:
            # on the client's pool, sized to the store's connections (asyncio's has 6)
            who = await bus.client._in_thread(bus.identities.authenticate, secret)
        except Unauthenticated as exc:
            bus.anonymous.take(address)
            raise HTTPException(401, {"message": str(exc), "field": "Authorization"},
                                headers={"WWW-Authenticate": "Bearer"}) from None
        assert secret is not None
        bus.auth_cache.put(secret, who)
    return who

def too_many(wait: float, what: str) -> HTTPException:
    return HTTPException(429, {"message": f"too many {what}: retry in {retry_after(wait)} s",
                               "field": "Authorization"},
                         headers={"Retry-After": retry_after(wait)})


async def session_caller(request: Request, secret: str) -> Identity:
    """The person of an open session; unsafe methods need its CSRF token too."""
    session, who = await open_session(request, secret)
    if request.method not in SAFE_METHODS and not hmac.compare_digest(
            request.headers.get(CSRF_HEADER, "").encode(), session["csrf"].encode()):
        raise HTTPException(403, {"message": f"a request authenticated by the session cookie "
                                  f"needs the session's {CSRF_HEADER} header", "field":
                                  CSRF_HEADER})
    return who


async def open_session(request: Request, secret: str) -> tuple[dict[str, Any], Identity]:
    """The open session of a cookie's ``secret`` and who holds it: the roles of the API
    token it was opened with (the console's sign-in), else of its user; 401 otherwise."""
    bus = bus_of(request)
    session = await bus.client._in_thread(bus.sessions.find, secret)
    if session is None:
        raise HTTPException(401, {"message": "the session has ended or expired (log in again "
                                  "at /v1/auth/login)", "field": SESSION_COOKIE})
    if not session.get("token") and bus.login is None:  # an OpenID login's, not served here
        raise HTTPException(401, {"message": "a bearer token is required (people's login is "
                                  "not configured on this bus)", "field": "Authorization"},
                            headers={"WWW-Authenticate": "Bearer"})
    try:
        if session.get("token"):
            who = await bus.client._in_thread(bus.identities.of_token, session["token"],
                                              session["ref"])
        else:
            who = await bus.client._in_thread(bus.identities.of_user, session["login"],
                                              session["ref"])
    except Unauthenticated as exc:
        raise HTTPException(401, {"message": str(exc), "field": SESSION_COOKIE}) from None
    return session, who


def not_found(doc_id: str) -> HTTPException:
    """404 that does not even echo the id asked for."""
    return HTTPException(404, {"message": "no such document", "field": "doc_id"})


def forbidden(what: str, tenant: str) -> HTTPException:
    return HTTPException(403, {"message": f"your roles on tenant {tenant} do not allow {what}",
                               "field": "Authorization"})


def sees(who: Identity, state: DocumentState, tenants: Any) -> bool:
    """A document is visible to readers of its tenant, and to the producer who sent it."""
    env = state.envelope
    return env is not None and may_see(who, env.tenant, env.producer, tenants)


def may_see(who: Identity, tenant: str, producer: str, tenants: Any) -> bool:
    """Whether ``who`` may read a document of ``tenant`` sent by ``producer``."""
    return who.may("read", tenant, tenants) or (
        who.may("read-own", tenant, tenants) and producer == who.producer)


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

"""``/v1/auth``: people log in with OpenID Connect (``bus.login``) and get a session cookie.

``login`` sends the browser to the provider with a fresh state, nonce and PKCE challenge
(the state also goes in a short-lived cookie, so only the browser that started a login
can finish it); ``callback`` takes that login once, exchanges the code and opens a
session; ``logout`` ends it; ``me`` says who calls, however authenticated. Without
``DEMAT_OIDC_ISSUER``, ``DEMAT_OIDC_CLIENT_ID`` and ``DEMAT_OIDC_REDIRECT_URI`` the first
three answer 501 naming the settings.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from bus.api.auth import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE, bus_of, permission
from bus.api.documents import Who
from bus.identity import Unauthenticated
from bus.login import LoginRefused, PeopleLogin
from bus.oidc import OidcError

router = APIRouter(prefix="/v1/auth", tags=["login"])
log = logging.getLogger(__name__)
LOGIN_COOKIE = "demat_login"
LOGIN_PATH = "/v1/auth"  # the login cookie goes only to these routes
DEFAULT_NEXT = "/v1/auth/me"


def _configured(request: Request) -> PeopleLogin:
    found = bus_of(request).login
    if found is None:
        raise HTTPException(501, {"message": "people's login is not configured on this bus: "
                                  "set DEMAT_OIDC_ISSUER, DEMAT_OIDC_CLIENT_ID and "
                                  "DEMAT_OIDC_REDIRECT_URI", "field": "DEMAT_OIDC_CLIENT_ID"})
    return found


def _local(next_path: str | None) -> str:
    """Where to go after the login: a path of this bus only (no open redirect)."""
    if not next_path:
        return DEFAULT_NEXT
    if not next_path.startswith("/") or next_path.startswith("//") or "\\" in next_path \
            or len(next_path) > 2000 or any(ord(c) < 33 for c in next_path):
        raise HTTPException(422, {"message": "next must be a path on this bus, such as "
                                  "/v1/documents", "field": "next"})
    return next_path


def _refused(exc: LoginRefused) -> HTTPException:
    return HTTPException(exc.status, {"message": exc.message, "field": exc.field})


@router.get("/login", summary="log in with the OpenID provider (redirects there)",
            status_code=302, response_class=RedirectResponse,
            openapi_extra=permission("public"))
async def login(request: Request, next: str | None = None) -> Response:
    people = _configured(request)
    target = _local(next)
    pending = await asyncio.to_thread(bus_of(request).sessions.begin, target)
    try:
        url = await asyncio.to_thread(people.authorization_url, pending)
    except LoginRefused as exc:
        raise _refused(exc) from None
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(LOGIN_COOKIE, pending.state, max_age=600, path=LOGIN_PATH,
                        httponly=True, secure=people.secure, samesite="lax")
    return response


@router.get("/callback", summary="where the OpenID provider sends the person back",
            status_code=303, response_class=RedirectResponse,
            openapi_extra=permission("public"))
async def callback(request: Request, code: str | None = None, state: str | None = None,
                   error: str | None = None, error_description: str | None = None
                   ) -> Response:
    people, bus = _configured(request), bus_of(request)
    started = request.cookies.get(LOGIN_COOKIE, "")
    if not state or not started or not hmac.compare_digest(state.encode(), started.encode()):
        raise HTTPException(401, {"message": "this login was not started by this browser "
                                  "(start again at /v1/auth/login)", "field": "state"})
    pending = await asyncio.to_thread(bus.sessions.take_login, state)
    if pending is None:
        raise HTTPException(401, {"message": "this login is unknown, used or expired (start "
                                  "again at /v1/auth/login)", "field": "state"})
    if error:
        raise HTTPException(401, {"message": f"the provider refused the login: {error[:100]}"
                                  f"{': ' + error_description[:300] if error_description else ''}",
                                  "field": "error"})
    if not code:
        raise HTTPException(400, {"message": "the provider sent no code", "field": "code"})
    try:
        person, claims, id_token = await asyncio.to_thread(people.finish, code, pending)
        await asyncio.to_thread(bus.identities.of_user, person, "login")
    except LoginRefused as exc:
        raise _refused(exc) from None
    except Unauthenticated as exc:
        raise HTTPException(403, {"message": str(exc), "field": "login"}) from None
    secret, session = await asyncio.to_thread(bus.sessions.open, person, claims, id_token)
    log.info("%s logged in (%s, subject %s of %s)", person, session["ref"], claims.get("sub"),
             claims.get("iss"))
    response = RedirectResponse(pending.next, status_code=303)
    response.delete_cookie(LOGIN_COOKIE, path=LOGIN_PATH, httponly=True, secure=people.secure,
                           samesite="lax")
    age = int(bus.sessions.lifetime.total_seconds())
    response.set_cookie(SESSION_COOKIE, secret, max_age=age, path="/", httponly=True,
                        secure=people.secure, samesite="lax")
    response.set_cookie(CSRF_COOKIE, session["csrf"], max_age=age, path="/", httponly=False,
                        secure=people.secure, samesite="lax")  # for the page's scripts
    return response


@router.post("/logout", summary="end the person's session", status_code=200,
             openapi_extra=permission("public"))
async def logout(request: Request) -> JSONResponse:
    """Ends the session of the cookie (its CSRF header is needed) and clears the cookies;
    ``end_session_url`` is the provider's own logout page, where it has one."""
    people, bus = _configured(request), bus_of(request)
    secret = request.cookies.get(SESSION_COOKIE)
    session = await asyncio.to_thread(bus.sessions.find, secret) if secret else None
    ended, provider_logout = False, None
    if session is not None:
        if not hmac.compare_digest(request.headers.get(CSRF_HEADER, "").encode(),
                                   session["csrf"].encode()):
            raise HTTPException(403, {"message": f"logging out needs the session's "
                                      f"{CSRF_HEADER} header", "field": CSRF_HEADER})
        await asyncio.to_thread(bus.sessions.close, secret)
        log.info("%s logged out (%s)", session["login"], session["ref"])
        ended = True
        try:
            provider_logout = await asyncio.to_thread(people.end_session_url,
                                                      session.get("id_token"))
        except OidcError:  # the provider's logout page is a courtesy: the session is over
            provider_logout = None
    response = JSONResponse({"logged_out": ended, "end_session_url": provider_logout})
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", secure=people.secure, samesite="lax")
    return response


@router.get("/me", summary="who calls, and the caller's roles per tenant",
            openapi_extra=permission("authenticated"))
async def me(request: Request, who: Who) -> dict[str, Any]:
    bus = bus_of(request)
    registry = bus.client.runtime.tenants
    session = None
    if who.token_id and who.token_id.startswith("session:"):
        found = await asyncio.to_thread(bus.sessions.find,
                                        request.cookies.get(SESSION_COOKIE, ""))
        if found is not None:
            session = {"expires_at": found["expires_at"], "csrf_token": found["csrf"]}
    return {"login": who.login, "actor": who.actor, "session": session,
            "tenants": [{"siren": t.siren, "name": t.name,
                         "roles": sorted(who.roles_on(t.siren, registry))}
                        for t in registry if t.siren in who.reaches(registry)]}

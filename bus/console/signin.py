"""Signing in and out of the console: an API token exchanged for a session cookie (or the
bus's OpenID login, when configured), and the language chosen.

The session is the API's own (``bus.sessions``): the same cookie authenticates the
console's pages and the API calls its scripts make (unsafe ones with the session's CSRF
token in ``X-CSRF-Token``). The sign-in form carries a one-time form token matched against
a cookie (a login CSRF guard); failed sign-ins spend the address's budget as failed API
authentications do.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from bus.api.auth import CSRF_COOKIE, SESSION_COOKIE, bus_of, permission, too_many
from bus.console.i18n import LANG_COOKIE, languages
from bus.console.web import PREFIX, ConsoleRoute, Signed, page_headers, render
from bus.identity import Unauthenticated

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
log = logging.getLogger(__name__)
FORM_COOKIE = "demat_console_form"
HOME = f"{PREFIX}/"


def local_path(next_path: str | None) -> str:
    """Where to go after signing in: a console path only (no open redirect)."""
    if not next_path or not next_path.startswith(PREFIX + "/") or "//" in next_path \
            or "\\" in next_path or len(next_path) > 2000 \
            or any(ord(c) < 33 for c in next_path):
        return HOME
    return next_path


def _form(request: Request, next_path: str, error: str | None = None,
          status: int = 200) -> Response:
    form_token = secrets.token_urlsafe(24)
    page = render(request, "login.html", None, status, next=local_path(next_path),
                  form_token=form_token, error=error,
                  oidc=bus_of(request).login is not None)
    page.set_cookie(FORM_COOKIE, form_token, max_age=1800, path=f"{PREFIX}/login",
                    httponly=True, samesite="strict", secure=_secure(request))
    return page


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


@router.get("/login", openapi_extra=permission("public"))
async def login_form(request: Request, next: str | None = None) -> Response:
    return _form(request, next or HOME)


@router.post("/login", openapi_extra=permission("public"))
async def sign_in(request: Request, token: Annotated[str, Form(max_length=200)],
                  form_token: Annotated[str, Form(max_length=100)],
                  next: Annotated[str, Form(max_length=2000)] = HOME) -> Response:
    bus = bus_of(request)
    expected = request.cookies.get(FORM_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), form_token.encode()):
        return _form(request, next, "login.expired", 400)
    address = request.client.host if request.client else "unknown"
    if wait := bus.anonymous.wait(address):
        raise too_many(wait, "failed authentications from your address")
    try:
        who = await bus.client._in_thread(bus.identities.authenticate, token.strip())
    except Unauthenticated as exc:
        bus.anonymous.take(address)
        log.warning("console sign-in refused from %s: %s", address, exc)
        return _form(request, next, "login.refused", 401)
    if who.token_id is None or who.token_id.startswith("oidc"):
        return _form(request, next, "login.refused", 401)
    secret, session = await asyncio.to_thread(bus.sessions.open, who.login, {}, "",
                                              who.token_id)
    log.info("%s signed in to the console (%s)", who.actor, session["ref"])
    response = RedirectResponse(local_path(next), status_code=303, headers=page_headers())
    age = int(bus.sessions.lifetime.total_seconds())
    response.set_cookie(SESSION_COOKIE, secret, max_age=age, path="/", httponly=True,
                        secure=_secure(request), samesite="strict")
    response.set_cookie(CSRF_COOKIE, session["csrf"], max_age=age, path="/",
                        secure=_secure(request), samesite="strict")
    response.delete_cookie(FORM_COOKIE, path=f"{PREFIX}/login")
    return response


@router.post("/logout", openapi_extra=permission("authenticated"))
async def sign_out(request: Request, me: Signed,
                   csrf: Annotated[str, Form(max_length=100)]) -> Response:
    if not hmac.compare_digest(csrf.encode(), me.csrf.encode()):
        return render(request, "error.html", me, 403, code=403,
                      detail={"message": "CSRF", "field": "csrf"})
    bus = bus_of(request)
    await asyncio.to_thread(bus.sessions.close, request.cookies.get(SESSION_COOKIE, ""))
    log.info("%s signed out of the console (%s)", me.who.login, me.session["ref"])
    response = RedirectResponse(f"{PREFIX}/login", status_code=303, headers=page_headers())
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/")
    return response


@router.get("/lang/{code}", openapi_extra=permission("public"))
async def choose_language(request: Request, code: str, next: str | None = None) -> Response:
    response = RedirectResponse(local_path(next), status_code=303, headers=page_headers())
    if code in languages():
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, path=PREFIX,
                            samesite="lax", secure=_secure(request))
    return response

"""What every console page uses: the signed-in person, the templates, the language, the
console's own security policy and its error pages."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape

from bus.api.auth import SESSION_COOKIE, bus_of, open_session, too_many
from bus.console.i18n import LANG_COOKIE, choose, languages, translator
from bus.identity import Identity

PREFIX = "/console"
HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
# the console's pages load their scripts, styles and images from the bus only
CONSOLE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
               "base-uri 'none'; object-src 'none'")
STATE_NAMES = ("received", "running", "waiting", "completed", "error", "rejected",
               "duplicate")
# the messages the page's script shows (it reads them from the page)
SCRIPT_LABELS = (*(f"state.{s}" for s in STATE_NAMES), "dlq.status_replayed",
                 "dlq.status_discarded", "dlq.select_first", "dlq.would", "dlq.done_replay",
                 "dlq.done_discard", "action.accepted")
templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                        autoescape=select_autoescape(["html", "svg"]),
                        trim_blocks=True, lstrip_blocks=True)


@dataclass
class Person:
    """Who is signed in: identity, session (for its CSRF token) and language."""

    who: Identity
    session: dict[str, Any]
    lang: str

    @property
    def csrf(self) -> str:
        return self.session["csrf"]


class SignInNeeded(Exception):
    """No open session: the page sends the browser to the sign-in form."""


def lang_of(request: Request) -> str:
    return choose(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


async def person(request: Request) -> Person:
    """The person of the session cookie (its request budget spent), else ``SignInNeeded``."""
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        raise SignInNeeded
    try:
        session, who = await open_session(request, secret)
    except HTTPException:
        raise SignInNeeded from None
    request.state.caller = who.actor
    if wait := bus_of(request).callers.take(who.rate_key):
        raise too_many(wait, f"requests of {who.rate_key}")
    return Person(who, session, lang_of(request))


Signed = Annotated[Person, Depends(person)]


def render(request: Request, name: str, me: Person | None, http_status: int = 200,
           **values: Any) -> HTMLResponse:
    """The template ``name`` as a page, in the person's (or browser's) language."""
    lang = me.lang if me else lang_of(request)
    tenants = bus_of(request).client.runtime.tenants
    t = translator(lang)
    html = templates.get_template(name).render(
        t=t, lang=lang, script_labels={k: t(k) for k in SCRIPT_LABELS},
        languages=languages(), me=me, prefix=PREFIX, path=request.url.path,
        tenant_names={x.siren: x.name for x in tenants},
        may=(lambda perm: bool(me.who.tenants_with(perm, tenants))) if me else None,
        **values)
    return HTMLResponse(html, status_code=http_status, headers=page_headers())


def page_headers() -> dict[str, str]:
    return {"Content-Security-Policy": CONSOLE_CSP}


def sign_in_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{PREFIX}/login?next={quote(target)}", status_code=303)


class ConsoleRoute(APIRoute):
    """A console route: a missing session sends to the sign-in form, a refusal of the
    API's functions (403, 404, 422, 429...) answers an HTML page saying why."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInNeeded:
                return sign_in_redirect(request)
            except HTTPException as exc:
                detail = exc.detail if isinstance(exc.detail, dict) else {
                    "message": str(exc.detail), "field": None}
                return render(request, "error.html", None, exc.status_code,
                              code=exc.status_code, detail=detail)

        return guarded

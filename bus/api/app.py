"""The FastAPI application: bus handles, limits, security headers, JSON errors, health."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bus.api import audit, deadletters, documents, login, pastell, push, registry, uploads
from bus.api.auth import permission
from bus.api.limits import AuthCache, Limiter
from bus.client import DematClient
from bus.console import mount as mount_console
from bus.identity import IdentityStore
from bus.index import Index
from bus.intake import SubmissionError
from bus.login import PeopleLogin
from bus.oidc import OidcVerifier
from bus.operator import DeadLetterDesk
from bus.plugins import load_plugins
from bus.receipts import Receipts
from bus.sessions import SessionStore
from bus.settings import Settings, get_settings
from schemas.errors import field_path
from schemas.text import ascii_digits

MAX_BODY = int(os.environ.get("DEMAT_API_MAX_BODY", str(4 * 1024**3)))  # bytes per request
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Strict-Transport-Security": "max-age=31536000",
}
# the interactive docs load Swagger UI from its CDN: a strict policy everywhere else
DOCS_CSP = ("default-src 'self'; script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
            "style-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
            "img-src 'self' data: https://fastapi.tiangolo.com")
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# refused requests (401, 403, 429), for the security team's log collector
security_log = logging.getLogger("demat.api.security")


@dataclass
class Bus:
    """What the routes use: the SDK client (runtime, store, producer), index, identities,
    the people's login with its sessions (``login`` is ``None`` unless configured),
    the operators' dead-letter desk, the door's receipts, and this process's request
    budgets and cache of authenticated callers."""

    client: DematClient
    index: Index
    identities: IdentityStore
    sessions: SessionStore
    desk: DeadLetterDesk
    auth_cache: AuthCache
    callers: Limiter  # by token (or OpenID login)
    anonymous: Limiter  # failed authentications, by client address
    receipts: Receipts
    login: PeopleLogin | None = None


def error(status: int, message: str, field: str | None = None,
          headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"field": field, "message": message}}, status_code=status,
                        headers=headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API of the bus ``settings`` point at (CORS origins from ``DEMAT_API_CORS``)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = DematClient(settings, producer_name="api")
        await client.start()
        runtime = client.runtime
        oidc = OidcVerifier(settings.oidc_issuer, settings.oidc_audience) \
            if settings.oidc_issuer else None
        index = Index(settings.database)
        app.state.bus = Bus(client, index, IdentityStore.of(runtime, oidc),
                            SessionStore(runtime.store,
                                         timedelta(minutes=settings.oidc_session_minutes)),
                            DeadLetterDesk(runtime, index),
                            AuthCache(settings.api_auth_cache_seconds),
                            Limiter(settings.api_rate, settings.api_burst),
                            Limiter(settings.api_anonymous_rate, settings.api_anonymous_burst),
                            runtime.receipts,
                            PeopleLogin.configured(settings, oidc))
        try:
            yield
        finally:
            await client.close()

    app = FastAPI(title="demat-bus", version="1", lifespan=lifespan,
                  description="Submit documents to the bus and follow them; every route "
                  "but health answers only within the caller's tenants.")
    _limits_and_headers(app)
    _errors(app)
    origins = [o for o in os.environ.get("DEMAT_API_CORS", "").split(",") if o]
    if origins:  # closed unless configured
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "Idempotency-Key"])
    app.include_router(uploads.router)  # before documents: /v1/documents/uploaded
    app.include_router(documents.router)
    app.include_router(registry.router)
    app.include_router(push.router)
    app.include_router(login.router)
    app.include_router(deadletters.router)
    app.include_router(audit.router)
    app.include_router(pastell.router)  # the Pastell-compatible door (/api/...)
    for router in load_plugins(settings.plugin_modules).api_routers:  # the families' routes
        app.include_router(router)
    mount_console(app)  # the web console, /console
    _health(app)
    return app


def _limits_and_headers(app: FastAPI) -> None:
    app.add_middleware(Guard)


class Guard:
    """Refuses bodies over ``MAX_BODY`` (413) and adds the security headers to every
    answer. Plain ASGI: no task nor stream per request, unlike ``@app.middleware``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"] in ("/docs", "/docs/oauth2-redirect")
        added = {**SECURITY_HEADERS, "Content-Security-Policy": DOCS_CSP if docs else API_CSP}

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in added.items():
                    headers.setdefault(name, value)
            await send(message)

        length = Headers(scope=scope).get("content-length")
        if length is not None and (not ascii_digits(length) or int(length) > MAX_BODY):
            refused = error(413, f"request body over {MAX_BODY} bytes", "Content-Length")
            await refused(scope, receive, send_guarded)
            return
        await self.app(scope, receive, send_guarded)


def _errors(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code in (401, 403, 429):
            _log_refusal(request, exc)
        if isinstance(exc.detail, dict):
            return error(exc.status_code, exc.detail["message"], exc.detail.get("field"),
                         exc.headers)
        return error(exc.status_code, str(exc.detail), None, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        loc = [p for p in first.get("loc", ()) if p not in ("body", "query", "header", "path")]
        return error(422, first.get("msg", "invalid request"), field_path(loc))

    @app.exception_handler(SubmissionError)
    async def refused(request: Request, exc: SubmissionError) -> JSONResponse:
        return error(422, exc.message, exc.field)


def _log_refusal(request: Request, exc: HTTPException) -> None:
    """One line per refused request: who (authenticated or not), from where, what, why."""
    detail = exc.detail["message"] if isinstance(exc.detail, dict) else str(exc.detail)
    security_log.warning(
        "refused %d %s %r caller=%r client=%s: %r", exc.status_code, request.method,
        request.url.path, getattr(request.state, "caller", None) or "-",
        request.client.host if request.client else "-", detail)


def _health(app: FastAPI) -> None:
    @app.get("/healthz", tags=["health"], summary="the process answers",
             openapi_extra=permission("public"))
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="the object store answers",
             openapi_extra=permission("public"))
    async def readyz(request: Request) -> Response:
        bus: Bus = request.app.state.bus
        try:
            await asyncio.wait_for(asyncio.to_thread(bus.client.runtime.store.get_record,
                                                     "identity/ready-probe"), 5)
        except Exception as exc:  # any failure of the store means not ready
            return error(503, f"object store unavailable: {exc}", "object_store")
        return JSONResponse({"status": "ready"})

"""A secure-mail partner: download portal (HTTP) and mail relay (SMTP, aiosmtpd).

Portal API:
- ``PUT /portal/api/packages/{key}``: store a file (headers ``X-File-Name``,
  ``X-Sha256``, ``X-Expires-In`` seconds); answers the package with its one-time
  download ``link``; the same key again returns the same package (counted).
- ``GET /portal/api/packages/{key}``: the package status: ``notified_at`` (the relay
  received the message whose Message-ID is ``<key@...>``), ``downloaded_at`` (the
  read receipt), ``expires_at``.
- ``GET /d/{token}``: the file, once; then ``410 Gone`` (also once expired).

The relay accepts mail on loopback, counts messages per Message-ID, and with
``auto_read_after`` set clicks the link itself after that many seconds (the demo's
agent reading their mail).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from connectors.simulator import (
    FailurePlan,
    HttpSimulator,
    SubmissionCounter,
    free_port,
)

LINK_RE = re.compile(r"https?://[^\s<>\"]+/d/[A-Za-z0-9_-]+")
MSGID_RE = re.compile(r"<([^@>]+)@")


@dataclass
class Package:
    key: str
    name: str
    data: bytes
    token: str
    expires_at: datetime
    notified_at: datetime | None = None
    downloaded_at: datetime | None = None
    downloads: int = 0

    def status(self, base_url: str) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "size": len(self.data),
                "sha256": hashlib.sha256(self.data).hexdigest(),
                "link": f"{base_url}/d/{self.token}", "expires_at": self.expires_at.isoformat(),
                "notified_at": _iso(self.notified_at), "downloaded_at": _iso(self.downloaded_at)}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass
class _Mailbox:
    messages: list[bytes] = field(default_factory=list)


class SecureMailSimulator(HttpSimulator):
    """Portal app, SMTP relay, packages and counters."""

    title = "secure mail portal simulator"

    def counts(self) -> dict[str, Any]:
        return {"uploads": self.uploads.snapshot(), "mails": self.mails.snapshot(),
                "duplicates": self.uploads.duplicates() | self.mails.duplicates(),
                "downloads": {k: p.downloads for k, p in self.packages.items()}}


    def __init__(self, failures: FailurePlan | None = None, *,
                 auto_read_after: float | None = None) -> None:
        super().__init__(failures)
        self.auto_read_after = auto_read_after
        self.packages: dict[str, Package] = {}
        self.by_token: dict[str, str] = {}
        self.uploads = SubmissionCounter()
        self.mails = SubmissionCounter()
        self.mailbox = _Mailbox()
        self.lock = threading.Lock()
        self.smtp: Controller | None = None
        self.app = self._build()

    # --- SMTP relay -------------------------------------------------------------

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        msg = message_from_bytes(raw, policy=policy.default)
        found = MSGID_RE.search(msg.get("Message-ID", ""))
        key = found.group(1) if found else ""
        self.mails.add(key)
        with self.lock:
            self.mailbox.messages.append(raw)
            package = self.packages.get(key)
            if package is not None and package.notified_at is None:
                package.notified_at = datetime.now(UTC)
        if self.auto_read_after is not None:
            body = msg.get_body(("plain",))
            link = LINK_RE.search(body.get_content() if body else "")
            if link:
                threading.Timer(self.auto_read_after, _click, (link.group(0),)).start()
        return "250 Message accepted for delivery"

    def start_smtp(self, port: int = 0) -> str:
        """Start the relay on loopback; return ``smtp://host:port``."""
        port = port or free_port()
        self.smtp = Controller(self, hostname="127.0.0.1", port=port)
        self.smtp.start()
        return f"smtp://127.0.0.1:{port}"

    def stop_smtp(self) -> None:
        if self.smtp is not None:
            self.smtp.stop()

    # --- portal -----------------------------------------------------------------

    def _build(self) -> FastAPI:
        app = self.new_app()
        sim = self

        @app.get("/portal/api/packages/{key}")
        async def status(key: str, request: Request) -> Response:
            await sim.failures.apply()
            package = sim.packages.get(key)
            if package is None:
                return JSONResponse({"key": key}, status_code=404)
            return JSONResponse(package.status(_base(request)))

        @app.put("/portal/api/packages/{key}")
        async def upload(key: str, request: Request) -> Response:
            await sim.failures.apply()
            data = await request.body()
            sha = request.headers.get("X-Sha256", "")
            if sha and hashlib.sha256(data).hexdigest() != sha.lower():
                return Response(status_code=400, content="checksum mismatch")
            sim.uploads.add(key)
            expires = datetime.now(UTC) + timedelta(
                seconds=float(request.headers.get("X-Expires-In", 7 * 86400)))
            with sim.lock:
                package = sim.packages.get(key)
                created = package is None
                if created:
                    package = Package(key, request.headers.get("X-File-Name", "document"),
                                      data, secrets.token_urlsafe(24), expires)
                    sim.packages[key] = package
                    sim.by_token[package.token] = key
            return JSONResponse(package.status(_base(request)), status_code=201 if created
                                else 200)

        @app.get("/d/{token}")
        async def download(token: str) -> Response:
            with sim.lock:
                package = sim.packages.get(sim.by_token.get(token, ""))
                if package is None:
                    return Response(status_code=404, content="unknown link")
                if package.downloaded_at is not None:
                    return Response(status_code=410, content="link already used")
                if datetime.now(UTC) > package.expires_at:
                    return Response(status_code=410, content="link expired")
                package.downloaded_at = datetime.now(UTC)
                package.downloads += 1
            return Response(package.data, media_type="application/pdf", headers={
                "Content-Disposition": f'attachment; filename="{package.name}"'})

        return app



def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _click(link: str) -> None:
    for _ in range(3):
        try:
            httpx.get(link, timeout=5)
            return
        except httpx.HTTPError:
            time.sleep(0.5)

"""Secure mail client: publish on the portal, mail the link, read the receipt.

Options: ``url`` (portal, or ``sim:securemail``), ``smtp`` (``smtp://host:port``
or ``sim:securemail-smtp``), ``sender``, ``expires_days`` (link lifetime),
``smtp_user``/``smtp_password`` and ``starttls`` for a real relay, ``timeout``.
Every call asks the portal first: a package is uploaded once and its message
sent once (the relay records the Message-ID ``<key@demat-bus>``).
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Iterable
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from connectors.errors import PermanentError, TransientError
from connectors.frames import aiter_chunks
from connectors.http import call, raise_for_status, resolve_url

PARTNER = "secure-mail"
MAIL_DOMAIN = "demat-bus"


class SecureMailClient:
    """Talk to the download portal (HTTP) and the mail relay (SMTP)."""

    def __init__(self, portal_url: str, smtp_url: str, *, sender: str,
                 expires_days: float = 30, timeout: float = 10.0, smtp_user: str | None = None,
                 smtp_password: str | None = None, starttls: bool = False) -> None:
        self.portal = portal_url.rstrip("/")
        smtp = urlsplit(smtp_url)
        self.smtp_host, self.smtp_port = smtp.hostname or "127.0.0.1", smtp.port or 25
        self.sender = sender
        self.expires_seconds = expires_days * 86400
        self.timeout = timeout
        self.smtp_auth = (smtp_user, smtp_password or "") if smtp_user else None
        self.starttls = starttls
        self.http = httpx.AsyncClient(timeout=timeout)

    @classmethod
    def from_options(cls, options: dict[str, Any], *, var_dir: Path) -> SecureMailClient:
        return cls(resolve_url(options["url"], var_dir), resolve_url(options["smtp"], var_dir),
                   sender=options.get("sender", "ne-pas-repondre@demat-bus.local"),
                   expires_days=float(options.get("expires_days", 30)),
                   timeout=float(options.get("timeout", 10)),
                   smtp_user=options.get("smtp_user"), smtp_password=options.get("smtp_password"),
                   starttls=bool(options.get("starttls", False)))

    def _url(self, key: str) -> str:
        return f"{self.portal}/portal/api/packages/{key}"

    async def lookup(self, key: str) -> dict[str, Any] | None:
        """The package's status on the portal, or ``None`` if it was never uploaded."""
        resp = await call(PARTNER, lambda: self.http.get(self._url(key)))
        if resp.status_code == 404:
            return None
        return raise_for_status(resp, PARTNER).json()

    async def publish(self, key: str, name: str, chunks: Iterable[bytes], sha256: str
                      ) -> dict[str, Any]:
        """Upload the file (streamed) and return the package with its download link."""
        headers = {"X-File-Name": name, "X-Sha256": sha256,
                   "X-Expires-In": str(int(self.expires_seconds))}
        resp = await call(PARTNER, lambda: self.http.put(
            self._url(key), content=aiter_chunks(chunks), headers=headers), attempts=1)
        return raise_for_status(resp, PARTNER).json()

    async def notify(self, key: str, to: str, subject: str, text: str) -> None:
        """Send the message (Message-ID ``<key@demat-bus>``) through the relay."""
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, to, subject
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = f"<{key}@{MAIL_DOMAIN}>"
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(text)
        await asyncio.to_thread(self._send, msg)

    def _send(self, msg: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.smtp_auth:
                    smtp.login(*self.smtp_auth)
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentError(f"{PARTNER}: recipient refused by the relay "
                                 f"({len(exc.recipients)} address)", partner=PARTNER) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientError(f"{PARTNER}: SMTP {type(exc).__name__}", partner=PARTNER
                                 ) from None

    async def aclose(self) -> None:
        await self.http.aclose()

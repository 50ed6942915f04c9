"""Secure mail: portal upload, real SMTP on loopback (aiosmtpd), one-time link, receipt."""

from __future__ import annotations

import asyncio
import hashlib
import re

import httpx

from connectors.securemail.client import SecureMailClient
from connectors.securemail.simulator import SecureMailSimulator


def test_publish_mail_download_once_and_receipt() -> None:
    sim = SecureMailSimulator()
    server = sim.serve()
    smtp = sim.start_smtp()
    data = b"%PDF-1.7 bulletin"
    sha = hashlib.sha256(data).hexdigest()

    async def go() -> tuple[dict, dict]:
        client = SecureMailClient(server.base_url, smtp, sender="paie@ville.example")
        assert await client.lookup("doc-1") is None
        package = await client.publish("doc-1", "bulletin.pdf", [data], sha)
        again = await client.publish("doc-1", "bulletin.pdf", [data], sha)
        assert again["link"] == package["link"]
        await client.notify("doc-1", "agent@ville.example", "Bulletin", f"Lien : {package['link']}")
        status = await client.lookup("doc-1")
        await client.aclose()
        return package, status

    try:
        package, status = asyncio.run(go())
        assert status["notified_at"] and status["downloaded_at"] is None
        mail = sim.mailbox.messages[0].decode()
        link = re.search(r"http://\S+/d/\S+", mail).group(0)
        assert link == package["link"] and "agent@ville.example" in mail
        first = httpx.get(link)
        assert first.status_code == 200 and first.content == data
        assert httpx.get(link).status_code == 410  # one-time
        counts = httpx.get(f"{server.base_url}/_sim/counts").json()
        assert counts["mails"] == {"doc-1": 1} and counts["downloads"] == {"doc-1": 1}
        assert httpx.get(f"{server.base_url}/portal/api/packages/doc-1").json()["downloaded_at"]
    finally:
        sim.stop_smtp()
        server.stop()

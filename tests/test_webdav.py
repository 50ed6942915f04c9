"""WebDAV deposit client against the WebDAV simulator, over real HTTP."""

from __future__ import annotations

import asyncio
import hashlib

import httpx
import pytest

from connectors.deposit import DepositFile
from connectors.errors import TransientError
from connectors.simulator import FailurePlan
from connectors.webdav.client import WebdavDeposit
from connectors.webdav.simulator import WebdavSimulator

TENANT, DOC = "214502494", "doc-1"


def _files() -> list[DepositFile]:
    data = b"bulletin de paie\n" * 100
    return [DepositFile("slip.pdf", [data[:500], data[500:]], hashlib.sha256(data).hexdigest())]


def test_deposit_then_lookup_then_no_second_write() -> None:
    sim = WebdavSimulator()
    server = sim.serve()
    try:
        async def go() -> None:
            client = WebdavDeposit(server.base_url, timeout=2)
            assert await client.lookup(TENANT, DOC) is None
            receipt = await client.deposit(TENANT, DOC, _files(), {"title": "t"})
            assert receipt["sent"] == ["slip.pdf"]
            found = await client.lookup(TENANT, DOC)
            assert found["metadata"] == {"title": "t"} and found["location"].endswith(DOC)
            again = await client.deposit(TENANT, DOC, _files(), {"title": "t"})
            assert again["sent"] == []  # the server already has the same content
            await client.aclose()

        asyncio.run(go())
        assert sim.puts.count(f"{TENANT}/{DOC}/slip.pdf") == 1
        assert sim.store.files[f"{TENANT}/{DOC}/slip.pdf"] == b"bulletin de paie\n" * 100
        listing = httpx.request("PROPFIND", f"{server.base_url}/{TENANT}/{DOC}/")
        assert listing.status_code == 207 and "slip.pdf" in listing.text
    finally:
        server.stop()


def test_server_errors_are_transient() -> None:
    sim = WebdavSimulator(FailurePlan(error_rate=1.0))
    server = sim.serve()
    try:
        client = WebdavDeposit(server.base_url, timeout=2)
        with pytest.raises(TransientError, match="503"):
            asyncio.run(client.lookup(TENANT, DOC))
    finally:
        server.stop()


def test_lost_answer_then_retry_writes_once() -> None:
    """A timeout after the server wrote the file: the retried deposit asks first."""
    sim = WebdavSimulator()
    server = sim.serve()
    try:
        async def go() -> None:
            client = WebdavDeposit(server.base_url, timeout=0.5)
            await client.deposit(TENANT, "warmup", _files(), {})
            sim.failures = FailurePlan(timeout_rate=0.5, timeout_seconds=0.8, seed=7)
            failures = 0
            for _ in range(30):  # what the step's retries do
                try:
                    if await client.lookup(TENANT, DOC) is None:
                        await client.deposit(TENANT, DOC, _files(), {"title": "t"})
                    break
                except TransientError:
                    failures += 1
            assert failures > 0
            await client.aclose()

        asyncio.run(go())
        assert sim.puts.count(f"{TENANT}/{DOC}/slip.pdf") == 1
        assert sim.puts.count(f"{TENANT}/{DOC}/metadata.json") == 1
    finally:
        server.stop()

"""As@lae client against the simulator over HTTP: send once, ACK then ATR, failures."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors.errors import TransientError
from connectors.sae import seda
from connectors.sae.asalae import AsalaeClient
from connectors.sae.simulator import SaeSimulator
from connectors.sae.sip import SipPackage
from connectors.simulator import SimulatorServer
from tests.archive.sae_support import one_file_sip, served_sae, until_atr

DATA = b"%PDF-1.7 bulletin\n" * 1000


@pytest.fixture()
def sim() -> Iterator[tuple[SaeSimulator, SimulatorServer]]:
    with served_sae(atr_delay=0.2) as served:
        yield served


def _package(tmp_path: Path, transfer_id: str, title: str = "Bulletin",
             content: bytes = DATA, fmt: str = "zip") -> SipPackage:
    return one_file_sip(tmp_path, transfer_id, content, path="doc/b.pdf",
                        media_type="application/pdf", title=title, fmt=fmt)


def test_sent_once_then_acknowledged_and_accepted(sim, tmp_path: Path) -> None:
    _, server = sim
    client = AsalaeClient(server.base_url, login="demat", password="x", poll_seconds=0.1)

    async def go() -> seda.TransferReply:
        package = _package(tmp_path, "T-ok", fmt="tar.gz")
        first = await client.send("216900910", "T-ok", package)
        assert not first.known
        again = await client.send("216900910", "T-ok", package)  # asks first: not re-sent
        assert again.ack is not None
        ack = seda.parse_acknowledgement(again.ack)
        assert ack.received_id == "T-ok" and ack.version == "2.2"
        return await until_atr(client, "T-ok")

    reply = asyncio.run(go())
    assert reply.accepted and reply.archival_id and reply.unit_ids["u-1"] == reply.archival_id
    assert httpx.get(f"{server.base_url}/_sim/counts").json()["transfers"] == \
        {"216900910/T-ok": 1}


def test_refused_and_corrupt_transfers_get_a_reply_code(sim, tmp_path: Path) -> None:
    _, server = sim
    client = AsalaeClient(server.base_url)

    async def go() -> tuple[seda.TransferReply, seda.TransferReply]:
        await client.send("216900910", "T-no", _package(tmp_path, "T-no", "[sim:refuse] x"))
        corrupt = _package(tmp_path, "T-bad")
        corrupt.manifest = corrupt.manifest.replace(
            hashlib.sha512(DATA).hexdigest().encode(), b"0" * 128)
        await client.send("216900910", "T-bad", corrupt)
        return await until_atr(client, "T-no"), await until_atr(client, "T-bad")

    refused, corrupt = asyncio.run(go())
    assert refused.reply_code == "300" and "refusé" in refused.comment
    assert corrupt.reply_code == "201" and "empreinte" in corrupt.comment


def test_failures_are_transient_and_a_lost_answer_is_not_resent(sim, tmp_path: Path) -> None:
    simulator, server = sim
    client = AsalaeClient(server.base_url, timeout=0.3)
    package = _package(tmp_path, "T-lost")

    async def go() -> None:
        httpx.post(f"{server.base_url}/_sim/failures", json={"error_rate": 1.0})
        with pytest.raises(TransientError, match="HTTP 503"):
            await client.send("216900910", "T-lost", package)
        httpx.post(f"{server.base_url}/_sim/failures",
                   json={"timeout_rate": 1.0, "timeout_seconds": 0.6})
        with pytest.raises(TransientError, match="timeout"):
            await client.send("216900910", "T-lost", package)
        httpx.post(f"{server.base_url}/_sim/failures", json={})
        # an earlier send reached the archive but its answer was lost: the client asks first
        simulator.receive(package.manifest, package.path.open("rb"))
        found = await client.send("216900910", "T-lost", package)
        assert found.known

    asyncio.run(go())
    counts = httpx.get(f"{server.base_url}/_sim/counts").json()
    assert counts["transfers"] == {"216900910/T-lost": 1} and counts["duplicates"] == {}


def test_a_transfer_still_being_checked_is_held_and_not_resent(sim, tmp_path: Path,
                                                                monkeypatch) -> None:
    """The archive took the SIP but checks it slowly; the client's POST times out: its
    next attempt sees "en cours de traitement" (held) and does not send it again."""
    simulator, server = sim
    checked = simulator._check

    def slow_check(*args):  # type: ignore[no-untyped-def]
        time.sleep(1.0)
        return checked(*args)

    monkeypatch.setattr(simulator, "_check", slow_check)
    client = AsalaeClient(server.base_url, timeout=0.4)
    package = _package(tmp_path, "T-slow")

    async def go() -> None:
        found = await client.send("216900910", "T-slow", package)
        assert found.pending and found.known and found.ack is None
        assert (await client.lookup("216900910", "T-never")).known is False

    asyncio.run(go())
    counts = httpx.get(f"{server.base_url}/_sim/counts").json()
    assert counts["transfers"] == {"216900910/T-slow": 1} and counts["duplicates"] == {}

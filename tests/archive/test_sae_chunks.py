"""As@lae chunked upload, "not yet" answers and digest spellings, client against the
simulator; and the requests our client sent before (whole SIP over 2 MiB, polling that
read only 404 as "not yet") get the archive's real answers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors.errors import PermanentError
from connectors.sae import seda
from connectors.sae.asalae import AsalaeClient
from connectors.sae.simulator import NOT_YET, SaeSimulator
from connectors.sae.sip import SipPackage
from connectors.simulator import SimulatorServer
from tests.archive.sae_support import one_file_sip, served_sae, until_atr

BIG = os.urandom(5 * 1024 * 1024 + 123)  # random: the SIP stays over 2 MiB compressed


@pytest.fixture()
def sim() -> Iterator[tuple[SaeSimulator, SimulatorServer]]:
    with served_sae(atr_delay=0.3) as served:
        yield served


def _package(tmp_path: Path, transfer_id: str, content: bytes, *, fmt: str = "tar.gz",
             spelling: str = "xmlenc") -> SipPackage:
    return one_file_sip(tmp_path, transfer_id, content, path="doc/scan.bin",
                        media_type="application/octet-stream", title="Plans", version="2.1",
                        fmt=fmt, spelling=spelling)


def test_large_sip_goes_in_chunks_and_is_archived_once(sim, tmp_path: Path) -> None:
    _, server = sim
    package = _package(tmp_path, "T-big", BIG)
    assert package.size > 2 * 1024 * 1024
    client = AsalaeClient(server.base_url, sip_format="tar.gz")

    async def go() -> seda.TransferReply:
        first = await client.send("216900910", "T-big", package)
        assert not first.known
        again = await client.send("216900910", "T-big", package)  # asks first: not re-sent
        assert again.known
        return await until_atr(client, "T-big")

    reply = asyncio.run(go())
    assert reply.accepted and reply.reply_code == "000" and reply.archival_id
    counts = httpx.get(f"{server.base_url}/_sim/counts").json()
    assert counts["transfers"] == {"216900910/T-big": 1}


def test_a_missing_chunk_leaves_no_transfer(sim, tmp_path: Path) -> None:
    simulator, server = sim
    package = _package(tmp_path, "T-part", BIG)
    session = httpx.post(f"{server.base_url}/sedaMessages",
                         data={"send_chunked_attachments": "true"},
                         files={"seda_message": ("bordereau.xml", package.manifest)}).json()
    data = package.path.read_bytes()
    fields = {"session_identifier": session["chunk_session_identifier"],
              "security_identifier": session["chunk_security_identifier"],
              "number_of_files": "1", "file_index": "1", "file_name": "T-part.tar.gz",
              "compression_algorithm": "TARGZ", "number_of_chunks": "2", "chunk_index": "1"}
    sent = httpx.post(f"{server.base_url}/sedaAttachmentsChunkFiles", data=fields,
                      files={"chunk_content": ("archive_part", data[: len(data) // 2])})
    assert sent.status_code == 200
    wrong = httpx.post(f"{server.base_url}/sedaAttachmentsChunkFiles",
                       data=fields | {"security_identifier": "guess", "chunk_index": "2"},
                       files={"chunk_content": ("archive_part", data[len(data) // 2:])})
    assert wrong.status_code == 404 and not simulator.transfers
    client = AsalaeClient(server.base_url)
    assert not asyncio.run(client.lookup("216900910", "T-part")).known


def test_before_whole_sip_over_two_mib_is_refused(sim, tmp_path: Path) -> None:
    """Our old client always sent the SIP whole in ``attachments``."""
    simulator, server = sim
    package = _package(tmp_path, "T-old", BIG)
    with package.path.open("rb") as fh:
        resp = httpx.post(f"{server.base_url}/sedaMessages", files={
            "seda_message": ("bordereau.xml", package.manifest, "application/xml"),
            "attachments": (package.filename, fh, package.media_type)})
    assert resp.status_code == 400 and "chunks" in resp.json()["error"]
    assert not simulator.transfers


def test_before_not_yet_is_a_500_the_old_client_did_not_read(sim, tmp_path: Path) -> None:
    """The ATR not produced yet: HTTP 500 ``Transfert en cours de traitement``; our old
    client read only a 404 as "not yet" and so failed the poll; the new one waits."""
    simulator, server = sim
    simulator.atr_delay = 30.0
    package = _package(tmp_path, "T-wait", b"%PDF-1.7 small\n")
    client = AsalaeClient(server.base_url)

    async def go() -> tuple[bytes | None, bytes | None]:
        await client.send("216900910", "T-wait", package)
        return (await client.transfer_reply("216900910", "T-wait"),
                await client.acknowledgement("216900910", "T-wait"))

    atr, ack = asyncio.run(go())
    assert atr is None and ack is not None
    url = client._message_url("ArchiveTransferReply", "216900910", "T-wait")
    resp = httpx.get(url)
    assert resp.status_code == 500 and resp.text == NOT_YET
    assert httpx.get(url.replace("T-wait", "T-none")).status_code == 404


@pytest.mark.parametrize("spelling", ["xmlenc", "codelist"])
def test_digest_spellings_are_both_checked(sim, tmp_path: Path, spelling: str) -> None:
    _, server = sim
    package = _package(tmp_path, f"T-{spelling}", b"%PDF-1.7 digest\n", fmt="zip",
                       spelling=spelling)
    algorithm = seda.DIGEST_ALGORITHMS["sha512"] if spelling == "xmlenc" else "SHA-512"
    assert f'algorithm="{algorithm}"'.encode() in package.manifest
    client = AsalaeClient(server.base_url)

    async def go() -> seda.TransferReply:
        await client.send("216900910", f"T-{spelling}", package)
        return await until_atr(client, f"T-{spelling}")

    assert asyncio.run(go()).accepted


def test_an_archive_without_chunks_is_a_clear_refusal(tmp_path: Path) -> None:
    package = _package(tmp_path, "T-nochunk", BIG)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json="ok")

    client = AsalaeClient("http://sae.test/restservices")
    client.http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    with pytest.raises(PermanentError, match="does not take attachments in chunks"):
        asyncio.run(client._send_chunked(package))

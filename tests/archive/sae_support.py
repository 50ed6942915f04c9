"""What the As@lae client tests share: a one-file SIP, the simulator served, the ATR
awaited."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from connectors.sae import seda
from connectors.sae.asalae import AsalaeClient
from connectors.sae.simulator import SaeSimulator
from connectors.sae.sip import SipFile, SipPackage, write_sip
from connectors.simulator import SimulatorServer


@contextmanager
def served_sae(atr_delay: float) -> Iterator[tuple[SaeSimulator, SimulatorServer]]:
    """An As@lae simulator on loopback (ACK at once, ATR after ``atr_delay``)."""
    simulator = SaeSimulator(ack_delay=0.0, atr_delay=atr_delay)
    server = simulator.serve()
    try:
        yield simulator, server
    finally:
        server.stop()


def one_file_sip(tmp_path: Path, transfer_id: str, content: bytes, *, path: str,
                 media_type: str, title: str, version: str = "2.2", fmt: str = "zip",
                 spelling: str = "xmlenc") -> SipPackage:
    """A SIP of one unit holding ``content`` (object ``o-1``), digests SHA-512."""
    files = [SipFile("o-1", path, len(content), hashlib.sha256(content).hexdigest(),
                     media_type, lambda: [content])]

    def manifest(objects: list[seda.DataObject]) -> bytes:
        return seda.build_archive_transfer(seda.Transfer(
            version=version, message_id=transfer_id, archival_agency=seda.Agency("AD069"),
            transferring_agency=seda.Agency("216900910"), objects=objects,
            units=[seda.Unit(id="u-1", title=title, objects=["o-1"])],
            digest_spelling=spelling))

    return write_sip(tmp_path / f"{transfer_id}.{fmt}", files, manifest, fmt=fmt,
                     algorithm="sha512")


async def until_atr(client: AsalaeClient, transfer_id: str) -> seda.TransferReply:
    """The transfer's ATR, polled every 50 ms (5 s at most)."""
    for _ in range(100):
        atr = await client.transfer_reply("216900910", transfer_id)
        if atr is not None:
            return seda.parse_transfer_reply(atr)
        await asyncio.sleep(0.05)
    raise AssertionError("no ATR")

"""As@lae REST client (Libriciel's electronic archive, ``.../restservices``).

- ``POST /sedaMessages`` (multipart): ``seda_message`` = the ArchiveTransfer manifest,
  ``attachments`` = the SIP archive (ZIP or TGZ); the transfer is known by its
  ``MessageIdentifier``. A SIP over ``chunk_size_in_bytes`` (2 MiB by default: As@lae
  takes no larger attachment) goes in chunks: ``POST /sedaMessages`` with
  ``send_chunked_attachments=true`` and no attachments answers
  ``chunk_session_identifier`` and ``chunk_security_identifier``, then each chunk is a
  ``POST /sedaAttachmentsChunkFiles`` (``chunk_content``, ``session_identifier``,
  ``security_identifier``, ``number_of_files``, ``file_index``, ``file_name``,
  ``compression_algorithm``, ``number_of_chunks``, ``chunk_index`` from 1);
- ``GET /sedaMessages/sequence:ArchiveTransfer/message:Acknowledgement/
  originOrganizationIdentification:{transferring agency}/originMessageIdentifier:{id}``:
  the Acknowledgement (XML), and ``message:ArchiveTransferReply`` for the ATR; while
  the message is not ready the archive answers HTTP 500 ``Transfert en cours de
  traitement`` (read as "not yet"), an unknown transfer is a 404;
- ``GET /ping``, ``GET /versions``. HTTP basic authentication, the password being sent
  as its SHA-256 hex digest (As@lae's convention).

Exactly-once: before sending, the client asks the archive for the transfer's ACK and
ATR; a transfer the archive already holds is never sent again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from connectors.errors import PermanentError, TransientError
from connectors.http import call, raise_for_status, resolve_url
from connectors.sae.sip import SipPackage

PARTNER = "sae"
SEND_ATTEMPTS = 2  # each one asks the archive first
CHUNK_SIZE = 2097152  # As@lae's attachment ceiling (Pastell's chunk_size_in_bytes default)
NOT_YET = "en cours de traitement"  # the 500 body of a message not produced yet
COMPRESSION = {"tar.gz": "TARGZ", "zip": "ZIP", "tar": "TAR"}


@dataclass
class TransferLookup:
    """What the archive holds for one transfer identifier."""

    ack: bytes | None = None
    atr: bytes | None = None
    pending: bool = False  # held, its messages not produced yet ("en cours de traitement")

    @property
    def known(self) -> bool:
        return self.pending or self.ack is not None or self.atr is not None


class AsalaeClient:
    """Send SIPs to As@lae and fetch their Acknowledgement and ArchiveTransferReply."""

    def __init__(self, base_url: str, *, login: str = "", password: str = "",
                 timeout: float = 60.0, sip_format: str = "zip",
                 poll_seconds: float = 300.0, max_poll_seconds: float = 3600.0,
                 chunk_size: int = CHUNK_SIZE) -> None:
        if chunk_size < 1:
            raise ValueError("asalae connector: option 'chunk_size_in_bytes' must be >= 1")
        self.chunk_size = chunk_size
        auth = httpx.BasicAuth(login, hashlib.sha256(password.encode()).hexdigest()) \
            if login else None
        self.base_url = base_url.rstrip("/")
        self.http = httpx.AsyncClient(auth=auth, timeout=timeout)
        self.sip_format = sip_format
        self.poll_seconds = poll_seconds
        self.max_poll_seconds = max_poll_seconds

    @classmethod
    def from_options(cls, options: dict[str, Any], *, var_dir: Path) -> AsalaeClient:
        """Options: url, login, password, timeout, sip_format (zip, tar, tar.gz),
        poll_seconds (first wait for ACK/ATR), max_poll_seconds, chunk_size_in_bytes."""
        return cls(resolve_url(options["url"], var_dir), login=options.get("login", ""),
                   password=options.get("password", ""),
                   timeout=float(options.get("timeout", 60)),
                   sip_format=options.get("sip_format", "zip"),
                   poll_seconds=float(options.get("poll_seconds", 300)),
                   max_poll_seconds=float(options.get("max_poll_seconds", 3600)),
                   chunk_size=int(options.get("chunk_size_in_bytes", CHUNK_SIZE)))

    def poll_after(self, polls: int) -> float:
        """Seconds before the next ACK/ATR poll: grows by half each time, capped."""
        return min(self.poll_seconds * 1.5 ** max(0, polls), self.max_poll_seconds)

    async def ping(self) -> str:
        resp = await call(PARTNER, lambda: self.http.get(f"{self.base_url}/ping"))
        return raise_for_status(resp, PARTNER).json()

    async def versions(self) -> dict[str, Any]:
        resp = await call(PARTNER, lambda: self.http.get(f"{self.base_url}/versions"))
        return raise_for_status(resp, PARTNER).json()

    def _message_url(self, message: str, transferring: str, transfer_id: str) -> str:
        return (f"{self.base_url}/sedaMessages/sequence:ArchiveTransfer/message:{message}/"
                f"originOrganizationIdentification:{quote(transferring, safe='')}/"
                f"originMessageIdentifier:{quote(transfer_id, safe='')}")

    async def _message(self, message: str, transferring: str, transfer_id: str
                       ) -> bytes | bool:
        """The message's XML; else ``True`` if the archive holds the transfer but has not
        produced it yet (HTTP 500 "en cours de traitement"), ``False`` if unknown (404)."""
        url = self._message_url(message, transferring, transfer_id)
        resp = await call(PARTNER, lambda: self.http.get(url,
                                                         headers={"Accept": "application/xml"}))
        if resp.status_code == 404:
            return False
        if resp.status_code == 500 and NOT_YET in resp.text:
            return True
        return raise_for_status(resp, PARTNER).content

    async def acknowledgement(self, transferring: str, transfer_id: str) -> bytes | None:
        """The Acknowledgement of a transfer, or ``None`` while the archive has none."""
        found = await self._message("Acknowledgement", transferring, transfer_id)
        return found if isinstance(found, bytes) else None

    async def transfer_reply(self, transferring: str, transfer_id: str) -> bytes | None:
        """The ArchiveTransferReply of a transfer, or ``None`` while there is none yet."""
        found = await self._message("ArchiveTransferReply", transferring, transfer_id)
        return found if isinstance(found, bytes) else None

    async def lookup(self, transferring: str, transfer_id: str) -> TransferLookup:
        """Ask the archive what it holds for ``transfer_id`` (before any (re)send): a
        transfer still "en cours de traitement" is held (``pending``), never re-sent."""
        ack = await self._message("Acknowledgement", transferring, transfer_id)
        atr = await self._message("ArchiveTransferReply", transferring, transfer_id)
        return TransferLookup(ack=ack if isinstance(ack, bytes) else None,
                              atr=atr if isinstance(atr, bytes) else None,
                              pending=ack is True or atr is True)

    async def send(self, transferring: str, transfer_id: str, package: SipPackage
                   ) -> TransferLookup:
        """Send the SIP unless the archive already has this transfer; return what the
        archive holds afterwards (ACK and ATR may still be ``None``)."""
        for attempt in range(1, SEND_ATTEMPTS + 1):
            found = await self.lookup(transferring, transfer_id)
            if found.known:
                return found
            try:
                if package.size > self.chunk_size:
                    await self._send_chunked(package)
                else:
                    await self._send_whole(package)
                return TransferLookup()
            except TransientError:
                if attempt == SEND_ATTEMPTS:
                    raise
            except PermanentError as exc:
                raise PermanentError(f"archive refused transfer {transfer_id}: {exc}",
                                     partner=PARTNER, status=exc.status) from None
        raise AssertionError("unreachable")

    async def _send_whole(self, package: SipPackage) -> None:
        async def post() -> httpx.Response:
            with package.path.open("rb") as fh:
                return await self.http.post(f"{self.base_url}/sedaMessages", files={
                    "seda_message": ("bordereau.xml", package.manifest, "application/xml"),
                    "attachments": (package.filename, fh, package.media_type)})

        raise_for_status(await call(PARTNER, post, attempts=1), PARTNER)

    async def _send_chunked(self, package: SipPackage) -> None:
        """Open a chunk session with the manifest, then send the SIP chunk by chunk."""
        resp = raise_for_status(await call(PARTNER, lambda: self.http.post(
            f"{self.base_url}/sedaMessages", data={"send_chunked_attachments": "true"},
            files={"seda_message": ("bordereau.xml", package.manifest, "application/xml")}),
            attempts=1), PARTNER)
        session = resp.json() if resp.content else None
        if not isinstance(session, dict) or not session.get("chunk_session_identifier") \
                or not session.get("chunk_security_identifier"):
            raise PermanentError("this As@lae does not take attachments in chunks "
                                 f"(answer {resp.text[:200]!r})", partner=PARTNER)
        total = -(-package.size // self.chunk_size)
        with package.path.open("rb") as fh:
            for index in range(1, total + 1):
                data = fh.read(self.chunk_size)
                fields = {"session_identifier": str(session["chunk_session_identifier"]),
                          "security_identifier": str(session["chunk_security_identifier"]),
                          "number_of_files": "1", "file_index": "1",
                          "file_name": package.filename,
                          "compression_algorithm": COMPRESSION[package.format],
                          "number_of_chunks": str(total), "chunk_index": str(index)}
                raise_for_status(await call(PARTNER, lambda d=data, f=fields: self.http.post(
                    f"{self.base_url}/sedaAttachmentsChunkFiles", data=f,
                    files={"chunk_content": ("archive_part", d, "application/octet-stream")}),
                    attempts=3), PARTNER)

    async def aclose(self) -> None:
        await self.http.aclose()

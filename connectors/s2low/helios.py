"""S²LOW HELIOS API client: PES Aller files to the public treasury (DGFiP Hélios).

- ``/modules/helios/api/helios_importer_fichier.php`` (multipart ``enveloppe``): post a
  PES Aller; answers ``<import><id/><resultat/><message/></import>``;
- ``/modules/helios/api/helios_transac_get_status.php?transaction=ID``: status code
  (-1 error, 1 posted, 2 waiting transmission, 3 transmitted, 4 acquit received,
  6 refused, 7 processing, 8 info, 9 waiting);
- ``/modules/helios/helios_download_acquit.php?id=ID``: the ``PES_ACQUIT``;
- ``/modules/helios/api/list_pes_aller.php``: the authority's PES Aller transactions
  by status (JSON), which ``submit_pes`` reads before posting so that a retried step
  never transmits a file twice;
- ``/modules/helios/api/helios_get_list.php``, ``helios_get_retour.php?id=ID`` and
  ``helios_change_status.php?id=ID``: the ``PES_Retour`` files and their read mark.

Authentication is the S²LOW account's (client certificate and/or login), as for ACTES.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from pathlib import Path
from typing import IO, Any

import httpx
from lxml import etree
from pydantic import BaseModel

from connectors.errors import BusinessRefusal, PermanentError
from connectors.http import call, raise_for_status
from connectors.s2low.client import S2lowClient

PARTNER = "s2low"
HELIOS = "/modules/helios"


class HeliosStatus(IntEnum):
    """Status of an S²LOW HELIOS transaction."""

    ERROR = -1
    CANCELLED = 0
    POSTED = 1
    WAITING_TRANSMISSION = 2
    TRANSMITTED = 3
    ACQUIT_RECEIVED = 4
    REFUSED = 6
    PROCESSING = 7
    INFO = 8
    WAITING = 9


class HeliosTransaction(BaseModel):
    id: int
    status: int
    message: str = ""


class PesSubmission(BaseModel):
    transaction_id: int
    created: bool


class PesRetourRef(BaseModel):
    id: int
    name: str = ""
    date: str = ""


class HeliosClient:
    """The HELIOS half of S²LOW, sharing the ACTES client's HTTP session and credentials."""

    def __init__(self, s2low: S2lowClient, *, search_statuses: Iterable[int] = (
            1, 2, 3, 4, 7, 8, 9, 6, -1)) -> None:
        self.s2low = s2low
        self.http = s2low.http
        self.search_statuses = tuple(search_statuses)
        self.poll_seconds = 60.0

    @classmethod
    def from_options(cls, options: dict[str, Any], *, var_dir: Path) -> HeliosClient:
        client = cls(S2lowClient.from_options(options, var_dir=var_dir))
        client.poll_seconds = float(options.get("helios_poll_seconds",
                                                options.get("poll_seconds", 60)))
        return client

    async def _get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        async def get() -> httpx.Response:
            return raise_for_status(await self.http.get(f"{HELIOS}/{path}", params=params),
                                    PARTNER)
        return await call(PARTNER, get)

    # ------------------------------------------------------------ PES Aller

    async def post_pes(self, name: str, content: bytes | IO[bytes]) -> int:
        """Post a PES Aller (``helios_importer_fichier.php``); never re-posted blindly."""
        async def post() -> httpx.Response:
            files = {"enveloppe": (name, content, "application/xml")}
            return raise_for_status(await self.http.post(
                f"{HELIOS}/api/helios_importer_fichier.php", files=files), PARTNER)

        root = _xml(await call(PARTNER, post, attempts=1), "import")
        if _text(root, "resultat") != "OK":
            raise BusinessRefusal(f"S²LOW refused PES {name!r}: {_text(root, 'message')}",
                                  partner=PARTNER)
        return int(_text(root, "id"))

    async def find_pes(self, name: str, sha1: str = "") -> int | None:
        """The authority's transaction for a PES file of this name, if posted."""
        for status in self.search_statuses:
            offset, limit = 0, 100
            while True:
                resp = await self._get("api/list_pes_aller.php",
                                       {"status_id": status, "offset": offset, "limit": limit})
                rows = (resp.json() or {}).get("transactions") or []
                for row in rows:  # Hélios refuses a second file of the same name
                    if row.get("filename") == name:
                        return int(row["id"])
                if len(rows) < limit:
                    break
                offset += limit
        return None

    async def submit_pes(self, name: str, path: Path, sha1: str) -> PesSubmission:
        """Transmit once: S²LOW is asked first whether it holds this file (name + SHA-1);
        the file is streamed from ``path``."""
        found = await self.find_pes(name, sha1)
        if found is not None:
            return PesSubmission(transaction_id=found, created=False)
        with path.open("rb") as fh:
            return PesSubmission(transaction_id=await self.post_pes(name, fh), created=True)

    async def get_status(self, transaction_id: int) -> HeliosTransaction:
        resp = await self._get("api/helios_transac_get_status.php",
                               {"transaction": transaction_id})
        root = _xml(resp, "transaction")
        if _text(root, "resultat") != "OK":
            raise PermanentError(f"S²LOW: status of PES transaction {transaction_id}: "
                                 f"{_text(root, 'message')}", partner=PARTNER)
        return HeliosTransaction(id=transaction_id, status=int(_text(root, "status")),
                                 message=_text(root, "message"))

    async def get_acquit(self, transaction_id: int) -> bytes:
        """The ``PES_ACQUIT`` of an acknowledged transaction."""
        resp = await self._get("helios_download_acquit.php", {"id": transaction_id})
        if not resp.content.lstrip().startswith(b"<"):
            raise PermanentError(f"S²LOW: no PES_ACQUIT for {transaction_id}: "
                                 f"{resp.text[:200]}", partner=PARTNER)
        return resp.content

    # ------------------------------------------------------------ PES Retour

    async def list_retours(self) -> list[PesRetourRef]:
        """Unread ``PES_Retour`` files of the authority (``helios_get_list.php``)."""
        root = _xml(await self._get("api/helios_get_list.php", {}), "liste")
        return [PesRetourRef(id=int(_text(r, "id")), name=_text(r, "nom"),
                             date=_text(r, "date")) for r in root.iter("pes_retour")]

    async def get_retour(self, retour_id: int) -> bytes:
        resp = await self._get("api/helios_get_retour.php", {"id": retour_id})
        return resp.content

    async def mark_retour_read(self, retour_id: int) -> None:
        root = _xml(await self._get("api/helios_change_status.php", {"id": retour_id}),
                    "change")
        if _text(root, "resultat") != "OK":
            raise PermanentError(f"S²LOW: PES_Retour {retour_id}: {_text(root, 'message')}",
                                 partner=PARTNER)

    async def aclose(self) -> None:
        await self.s2low.aclose()


def _xml(resp: httpx.Response, root_tag: str) -> etree._Element:
    try:
        root = etree.fromstring(resp.content, etree.XMLParser(no_network=True,
                                                              resolve_entities=False))
    except etree.XMLSyntaxError:
        raise PermanentError(f"S²LOW: expected <{root_tag}> XML, got {resp.text[:200]!r}",
                             partner=PARTNER) from None
    if root.tag != root_tag:
        raise PermanentError(f"S²LOW: expected <{root_tag}>, got <{root.tag}>", partner=PARTNER)
    return root


def _text(root: etree._Element, tag: str) -> str:
    found = root.find(tag)
    return (found.text or "").strip() if found is not None else ""

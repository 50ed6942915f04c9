"""S²LOW HELIOS API client: PES Aller files to the public treasury (DGFiP Hélios).

The contract (scripts, answers, quirks, sources) is in ``connectors/README.md``:

- ``api/helios_importer_fichier.php`` (multipart ``enveloppe``) answers
  ``<import><id/><resultat/><message/></import>``; a file whose SHA-1 S²LOW already
  holds (any authority) is refused ``doublon détecté. Ce fichier a déjà été posté.``
  without its transaction id;
- ``api/helios_transac_get_status.php?transaction=ID`` answers ``<transaction>`` with
  ``id``, ``resultat``, ``message``, ``status`` (``HeliosStatus``);
- ``helios_download_acquit.php?id=ID`` sends the ``PES_ACQUIT``, or redirects (302)
  when there is none;
- ``api/list_pes_aller.php`` lists only transaction ids, and only to an archivist
  account (else 400 ``{"error": ...}``); with ``helios_download_file.php?id=ID`` it
  is how a duplicate's transaction is recovered (SHA-1 compared);
- ``api/helios_get_list.php``, ``api/helios_get_retour.php?id=ID``,
  ``api/helios_change_status.php?id=ID``: the ``PES_Retour`` files and their read mark.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, timedelta
from enum import IntEnum
from pathlib import Path
from typing import IO, Any

import httpx
from lxml import etree
from pydantic import BaseModel

from connectors.errors import PermanentError
from connectors.http import call, raise_for_status
from connectors.s2low.client import S2lowClient
from connectors.s2low.transport import posted_name

PARTNER = "s2low"
HELIOS = "/modules/helios"
DUPLICATE = "doublon détecté"


class HeliosStatus(IntEnum):
    """Every status S²LOW defines for a HELIOS transaction (``src/Enum/HeliosStatus.php``)."""

    ERREUR = -1
    ANNULE = 0
    POSTE = 1
    EN_ATTENTE = 2
    TRANSMIS = 3
    ACQUITTE = 4
    VALIDE = 5
    REFUSE = 6
    EN_TRAITEMENT = 7
    INFORMATION_DISPONIBLE = 8
    ENVOYE_AU_SAE = 9
    ACCEPTE_PAR_SAE = 10
    REFUSE_PAR_SAE = 11
    ATTENTE_SIGNEE = 13
    ATTENTE_POSTEE = 14
    EN_ATTENTE_TRANSMISSION_SAE = 19
    ERREUR_LORS_DE_L_ENVOI_SAE = 20
    DETRUITE = 22
    TRANSMIS_SANS_ACK = 24


PENDING = frozenset({HeliosStatus.POSTE, HeliosStatus.EN_ATTENTE, HeliosStatus.TRANSMIS,
                     HeliosStatus.EN_TRAITEMENT, HeliosStatus.ATTENTE_SIGNEE,
                     HeliosStatus.ATTENTE_POSTEE})
# the PES_ACQUIT is there: 4/6/8 (``ApiHeliosStatusResolver``), and every archiving state,
# reached after the acquit (9, 10, 11, 19, 20)
WITH_ACQUIT = frozenset({HeliosStatus.ACQUITTE, HeliosStatus.REFUSE,
                         HeliosStatus.INFORMATION_DISPONIBLE, HeliosStatus.ENVOYE_AU_SAE,
                         HeliosStatus.ACCEPTE_PAR_SAE, HeliosStatus.REFUSE_PAR_SAE,
                         HeliosStatus.EN_ATTENTE_TRANSMISSION_SAE,
                         HeliosStatus.ERREUR_LORS_DE_L_ENVOI_SAE, HeliosStatus.VALIDE})


class DuplicatePes(PermanentError):
    """S²LOW already holds a file with this content (its ``doublon`` answer)."""


class HeliosTransaction(BaseModel):
    id: int
    status: int
    message: str = ""

    @property
    def code(self) -> HeliosStatus | int:
        try:
            return HeliosStatus(self.status)
        except ValueError:
            return self.status


class PesSubmission(BaseModel):
    transaction_id: int
    created: bool
    duplicate: bool = False  # S²LOW answered "doublon": the id was recovered


class PesRetourRef(BaseModel):
    id: int
    name: str = ""
    date: str = ""


class HeliosClient:
    """The HELIOS half of S²LOW, sharing the ACTES client's HTTP session and credentials."""

    def __init__(self, s2low: S2lowClient, *, list_statuses: Iterable[int] = (
            1, 2, 3, 7, 4, 8, 6, -1, 9, 10, 11, 19, 20, 13, 14),
            recover_days: int = 31) -> None:
        self.s2low = s2low
        self.http = s2low.http
        self.list_statuses = tuple(list_statuses)
        self.recover_days = recover_days
        self.poll_seconds = 60.0

    @classmethod
    def from_options(cls, options: dict[str, Any], *, var_dir: Path) -> HeliosClient:
        client = cls(S2lowClient.from_options(options, var_dir=var_dir))
        client.poll_seconds = float(options.get("helios_poll_seconds",
                                                options.get("poll_seconds", 60)))
        return client

    async def _get(self, path: str, params: dict[str, Any], *,
                   redirects: bool = True) -> httpx.Response:
        async def get() -> httpx.Response:
            return raise_for_status(await self.http.get(
                f"{HELIOS}/{path}", params=params, follow_redirects=redirects), PARTNER)
        return await call(PARTNER, get)

    # ------------------------------------------------------------ PES Aller

    async def post_pes(self, name: str, content: bytes | IO[bytes]) -> int:
        """Post a PES Aller (``helios_importer_fichier.php``); never re-posted blindly."""
        async def post() -> httpx.Response:
            files = {"enveloppe": (posted_name(name, dash=True), content, "text/xml")}
            return raise_for_status(await self.http.post(
                f"{HELIOS}/api/helios_importer_fichier.php", files=files), PARTNER)

        root = _xml(await call(PARTNER, post, attempts=1), "import")
        if _text(root, "resultat") != "OK":
            message = _text(root, "message")
            error = DuplicatePes if message.startswith(DUPLICATE) else PermanentError
            raise error(f"S²LOW refused PES {name!r}: {message}", partner=PARTNER)
        return int(_text(root, "id"))

    async def submit_pes(self, name: str, path: Path, sha1: str, *,
                         known_id: int | None = None) -> PesSubmission:
        """Transmit once: ``known_id`` (kept from an earlier import answer) is reused; a
        ``doublon`` answer means already sent, and its transaction is recovered."""
        if known_id:
            return PesSubmission(transaction_id=known_id, created=False)
        try:
            with path.open("rb") as fh:
                return PesSubmission(transaction_id=await self.post_pes(name, fh),
                                     created=True)
        except DuplicatePes as exc:
            found = await self.find_pes(sha1)
            if found is None:
                raise DuplicatePes(f"{exc}; no transaction of this account holds SHA-1 {sha1} "
                                   f"(the last {self.recover_days} days)",
                                   partner=PARTNER) from None
            return PesSubmission(transaction_id=found, created=False, duplicate=True)

    async def find_pes(self, sha1: str) -> int | None:
        """The account's transaction holding a PES of this SHA-1 (archivist account:
        ``list_pes_aller.php`` gives ids, each file is downloaded and compared)."""
        since = (date.today() - timedelta(days=self.recover_days)).isoformat()
        for status in self.list_statuses:
            offset, limit = 0, 100
            while True:
                rows = await self._list_ids(status, offset, limit, since)
                for tid in rows:
                    if hashlib.sha1(await self.get_pes_aller(tid)).hexdigest() == sha1:
                        return tid
                if len(rows) < limit:
                    break
                offset += limit
        return None

    async def _list_ids(self, status: int, offset: int, limit: int, since: str) -> list[int]:
        async def get() -> httpx.Response:  # 400 is its refusal: read, not raised
            resp = await self.http.get(f"{HELIOS}/api/list_pes_aller.php", params={
                "status_id": status, "offset": offset, "limit": limit, "min_date": since})
            return resp if resp.status_code == 400 else raise_for_status(resp, PARTNER)
        resp = await call(PARTNER, get)
        try:
            body = resp.json()
        except ValueError:
            raise PermanentError(f"S²LOW list_pes_aller: expected JSON, got "
                                 f"{resp.text[:200]!r}", partner=PARTNER) from None
        if resp.status_code == 400 or "error" in body:
            raise PermanentError(f"S²LOW list_pes_aller refused: {body.get('error')}",
                                 partner=PARTNER)
        return [int(row["id"]) for row in body.get("transactions") or []]

    async def get_pes_aller(self, transaction_id: int) -> bytes:
        """The PES Aller file S²LOW holds (``helios_download_file.php``)."""
        resp = await self._get("helios_download_file.php", {"id": transaction_id},
                               redirects=False)
        _refused_by_redirect(resp, f"PES Aller of {transaction_id}")
        return resp.content

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
        """The ``PES_ACQUIT`` of a transaction (S²LOW redirects when it has none)."""
        resp = await self._get("helios_download_acquit.php", {"id": transaction_id},
                               redirects=False)
        _refused_by_redirect(resp, f"PES_ACQUIT of {transaction_id}")
        return resp.content

    # ------------------------------------------------------------ PES Retour

    async def list_retours(self) -> list[PesRetourRef]:
        """Unread ``PES_Retour`` files of the authority (``helios_get_list.php``)."""
        root = _xml(await self._get("api/helios_get_list.php", {}), "liste")
        if _text(root, "resultat") == "KO":
            raise PermanentError(f"S²LOW: PES_Retour list: {_text(root, 'message')}",
                                 partner=PARTNER)
        return [PesRetourRef(id=int(_text(r, "id")), name=_text(r, "nom"),
                             date=_text(r, "date")) for r in root.iter("pes_retour")]

    async def get_retour(self, retour_id: int) -> bytes:
        """The PES_Retour file; S²LOW answers ``<get_retour>`` with ``KO`` when it cannot."""
        resp = await self._get("api/helios_get_retour.php", {"id": retour_id})
        if b"<get_retour" in resp.content[:200]:
            root = _xml(resp, "get_retour")
            raise PermanentError(f"S²LOW: PES_Retour {retour_id}: {_text(root, 'message')}",
                                 partner=PARTNER)
        return resp.content

    async def mark_retour_read(self, retour_id: int) -> None:
        """Mark a PES_Retour read (``helios_change_status.php``: ``<transaction>`` with
        ``idRetour``, ``resultat``, ``message``)."""
        root = _xml(await self._get("api/helios_change_status.php", {"id": retour_id}),
                    "transaction")
        if _text(root, "resultat") != "OK":
            raise PermanentError(f"S²LOW: PES_Retour {retour_id}: {_text(root, 'message')}",
                                 partner=PARTNER)

    async def aclose(self) -> None:
        await self.s2low.aclose()


def _refused_by_redirect(resp: httpx.Response, what: str) -> None:
    """S²LOW's download scripts refuse by redirecting (the reason is in the web session)."""
    if resp.is_redirect:
        raise PermanentError(f"S²LOW: no {what}: redirected to "
                             f"{resp.headers.get('location', '?')}", partner=PARTNER)


def _xml(resp: httpx.Response, root_tag: str) -> etree._Element:
    try:
        root = etree.fromstring(resp.content, etree.XMLParser(no_network=True,
                                                              resolve_entities=False))
    except etree.XMLSyntaxError:  # e.g. "KO\nÉchec de l'authentification" in plain text
        raise PermanentError(f"S²LOW: expected <{root_tag}> XML, got {resp.text[:200]!r}",
                             partner=PARTNER) from None
    if root.tag != root_tag:
        raise PermanentError(f"S²LOW: expected <{root_tag}>, got <{root.tag}>", partner=PARTNER)
    return root


def _text(root: etree._Element, tag: str) -> str:
    found = root.find(tag)
    return _unmangle((found.text or "").strip()) if found is not None else ""


def _unmangle(text: str) -> str:
    """S²LOW declares ISO-8859-1 but writes UTF-8 text in ``<transaction>``: undo it."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text

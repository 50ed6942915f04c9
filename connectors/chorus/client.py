"""Chorus Pro API client, as reached through the PISTE gateway.

PISTE hands out OAuth2 bearer tokens (client credentials grant, form-encoded, on
``/api/oauth/token`` of ``oauth.piste.gouv.fr`` or its sandbox); every Chorus Pro
call also carries the technical account in the ``cpro-account`` header (base64 of
``login:password``). Calls are JSON ``POST``s under ``/cpro/`` of
``api.piste.gouv.fr`` (or ``sandbox-api.piste.gouv.fr``); answers carry
``codeRetour`` (0 = done, 20000 = the search found nothing) and ``libelle``.

Supplier side: ``factures/v1/deposer/flux`` (Factur-X PDF, UBL, CII, PIVOT, base64 in
``fichierFlux`` with its ``syntaxeFlux``) answers ``numeroFluxDepot``;
``transverses/v1/consulterCRDetaille`` tells whether the flow was integrated or
rejected (and why); ``factures/v1/rechercher/fournisseur`` by ``numeroFluxDepot``
gives the invoice's ``identifiantFactureCPP``; ``factures/v1/consulter/historique``
its status life-cycle. Recipient side: ``rechercher/recipiendaire``,
``telecharger/groupe`` (the file in ``fichierResultat``) and ``traiter/recue``.

Exactly-once: ``submit_invoice`` looks the invoice up (supplier + number) before
depositing it, and ``set_received_status`` reads the history before updating.
Searches scan every page (``pageCourante`` up to ``pages``).
"""

from __future__ import annotations

import base64
import io
import time
import zipfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from connectors.chorus import models
from connectors.chorus.models import (
    LIFECYCLE,
    PAID_STATUS,
    REFUSED_STATUSES,
    DepositReceipt,
    FluxReport,
    InvoiceHistory,
    InvoiceSummary,
)
from connectors.errors import BusinessRefusal, PermanentError, TransientError
from connectors.http import call, raise_for_status, resolve_url

__all__ = ["LIFECYCLE", "PAID_STATUS", "REFUSED_STATUSES", "ChorusClient", "DepositReceipt",
           "FluxReport", "InvoiceHistory", "InvoiceSummary"]

PARTNER = "chorus"
PISTE_API = "https://api.piste.gouv.fr"
PISTE_OAUTH = "https://oauth.piste.gouv.fr/api/oauth/token"
SANDBOX_API = "https://sandbox-api.piste.gouv.fr"
SANDBOX_OAUTH = "https://sandbox-oauth.piste.gouv.fr/api/oauth/token"
TOKEN_PATH = "/api/oauth/token"
FACTURES = "/cpro/factures/v1"
TRANSVERSES = "/cpro/transverses/v1"
NO_RESULT = 20000  # codeRetour of a search that found nothing (HTTP 200)


class ChorusClient:
    """Async client of Chorus Pro through PISTE (OAuth2 + technical account)."""

    def __init__(self, api_url: str, *, oauth_url: str, client_id: str, client_secret: str,
                 login: str, password: str, user_id: int = 0, structure_id: int | None = None,
                 timeout: float = 30.0, page_size: int = 100, poll_seconds: float = 600.0
                 ) -> None:
        self.api_url = api_url.rstrip("/")
        self.oauth_url = oauth_url
        self.client_id, self.client_secret = client_id, client_secret
        self.account = base64.b64encode(f"{login}:{password}".encode()).decode()
        self.user_id = user_id  # idUtilisateurCourant, sent only when set
        self.structure_id = structure_id  # idDestinataire of the received invoices
        self.page_size = page_size
        self.poll_seconds = poll_seconds  # how often the steps ask about a deposited invoice
        self.http = httpx.AsyncClient(timeout=timeout)
        self._token: str | None = None
        self._token_until = 0.0

    @classmethod
    def from_options(cls, options: dict[str, Any], *, var_dir: Path) -> ChorusClient:
        """``url`` (or PISTE's production / ``sandbox: true`` hosts), credentials, ids."""
        sandbox = bool(options.get("sandbox", False))
        url = options.get("url")
        api = resolve_url(url, var_dir) if url else (SANDBOX_API if sandbox else PISTE_API)
        oauth = options.get("oauth_url")
        if oauth:
            oauth = resolve_url(oauth, var_dir)
        else:
            oauth = api.rstrip("/") + TOKEN_PATH if url else (
                SANDBOX_OAUTH if sandbox else PISTE_OAUTH)
        structure = options.get("structure_id")
        return cls(api, oauth_url=oauth, client_id=options.get("client_id", "demat"),
                   client_secret=options.get("client_secret", ""),
                   login=options.get("login", "TECH_demat@cpro.fr"),
                   password=options.get("password", ""),
                   user_id=int(options.get("user_id", 0)),
                   structure_id=int(structure) if structure is not None else None,
                   timeout=float(options.get("timeout", 30)),
                   poll_seconds=float(options.get("poll_seconds", 600)))

    # ------------------------------------------------------------ plumbing

    async def token(self, *, renew: bool = False) -> str:
        """A PISTE bearer token (client credentials), renewed shortly before it expires."""
        if self._token and not renew and time.monotonic() < self._token_until:
            return self._token

        async def fetch() -> httpx.Response:
            return raise_for_status(await self.http.post(self.oauth_url, data={
                "grant_type": "client_credentials", "client_id": self.client_id,
                "client_secret": self.client_secret, "scope": "openid"}), PARTNER)

        body = (await call(PARTNER, fetch)).json()
        self._token = body["access_token"]
        self._token_until = time.monotonic() + max(0.0, float(body.get("expires_in", 3600)) - 30)
        return self._token

    async def _post(self, path: str, body: dict[str, Any], *, attempts: int = 3,
                    search: bool = False) -> dict[str, Any]:
        """POST a JSON call; a 401 renews the token once; ``codeRetour`` != 0 raises
        (a search's 20000, "nothing found", is an answer)."""
        if self.user_id:
            body = {"idUtilisateurCourant": self.user_id, **body}

        async def post() -> httpx.Response:
            resp = await self._send(path, body, await self.token())
            if resp.status_code == 401:
                resp = await self._send(path, body, await self.token(renew=True))
            if resp.status_code != 400:
                raise_for_status(resp, PARTNER)  # transient 5xx/429 are retried by call()
            return resp

        resp = await call(PARTNER, post, attempts=attempts)
        answer = _json(resp)
        code = _code(answer.get("codeRetour", -1 if resp.status_code == 400 else 0))
        if resp.status_code == 200 and (code == 0 or (search and code == NO_RESULT)):
            return answer
        raise BusinessRefusal(f"Chorus Pro {path.split('/v1/', 1)[-1]}: HTTP {resp.status_code}, "
                              f"codeRetour {code}: {answer.get('libelle') or resp.text[:300]}",
                              partner=PARTNER, status=resp.status_code)

    async def _send(self, path: str, body: dict[str, Any], token: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "cpro-account": self.account,
                   "Content-Type": "application/json;charset=utf-8",
                   "Accept": "application/json"}
        return await self.http.post(self.api_url + path, json=body, headers=headers)

    async def _pages(self, path: str, criteria: dict[str, Any], paging: str,
                     pages_of: Callable[[dict[str, Any]], tuple[int, int]]) -> list[dict]:
        """Every row of a search, page after page until the last one."""
        rows: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = await self._post(path, {**criteria, paging: {
                "pageResultatDemandee": page, "nbResultatsParPage": self.page_size}},
                search=True)
            if _code(answer.get("codeRetour", 0)) == NO_RESULT:
                return rows
            listed = [r for r in answer.get("listeFactures") or [] if isinstance(r, dict)]
            rows += listed
            current, last = pages_of(answer)
            if not listed or max(page, current) >= last:
                return rows
            page += 1

    # ------------------------------------------------------------ supplier side

    async def deposit_flux(self, data: bytes, name: str, syntax: str, *,
                           signed: bool = False) -> DepositReceipt:
        """``deposer/flux``: deposit one invoice file; never re-posted blindly."""
        answer = await self._post(f"{FACTURES}/deposer/flux", {
            "fichierFlux": base64.b64encode(data).decode(), "nomFichier": name,
            "syntaxeFlux": syntax, "avecSignature": signed}, attempts=1)
        return DepositReceipt(numero_flux=str(answer["numeroFluxDepot"]),
                              date_depot=str(answer.get("dateDepot") or ""),
                              syntax=str(answer.get("syntaxeFlux") or syntax))

    async def flux_report(self, numero_flux: str) -> FluxReport:
        """``consulterCRDetaille``: is the deposited flow integrated, rejected (why)?"""
        answer = await self._post(f"{TRANSVERSES}/consulterCRDetaille",
                                  {"numeroFluxDepot": numero_flux})
        return models.flux_report(numero_flux, answer)

    async def deposit_outcome(self, numero_flux: str, number: str, supplier_id: str = ""
                              ) -> tuple[FluxReport, InvoiceSummary | None]:
        """The flow's report and the invoice it became, once integrated. A flow rejected
        while Chorus Pro holds the invoice from another flow (a re-deposit after a lost
        answer: a "doublon") gives that invoice: it was deposited once."""
        report = await self.flux_report(numero_flux)
        if report.integrated:
            return report, await self.find_by_flux(numero_flux)
        if report.rejected:
            return report, await self.find_issued(number, supplier_id) if number else None
        return report, None

    async def search_issued(self, criteria: dict[str, Any]) -> list[InvoiceSummary]:
        """``rechercher/fournisseur`` with Chorus Pro's criteria, every page."""
        rows = await self._pages(f"{FACTURES}/rechercher/fournisseur", criteria,
                                 "rechercheFactureParFournisseur", _pages_in_parametres)
        return [models.issued_row(r) for r in rows]

    async def find_by_flux(self, numero_flux: str) -> InvoiceSummary | None:
        """The invoice Chorus Pro made of a deposited flow, once integrated."""
        rows = await self.search_issued({"numeroFluxDepot": numero_flux})
        return next((r for r in rows if r.numero_flux in ("", numero_flux)), None)

    async def find_issued(self, number: str, supplier_id: str = "") -> InvoiceSummary | None:
        """The supplier's invoice with this number, if Chorus Pro holds it."""
        for row in await self.search_issued({"numeroFacture": number}):
            if row.number == number and (not supplier_id or not row.supplier_id
                                         or row.supplier_id == supplier_id):
                return row
        return None

    async def submit_invoice(self, data: bytes, name: str, syntax: str, number: str,
                             supplier_id: str = "") -> DepositReceipt:
        """Deposit once: an invoice Chorus Pro already holds is not deposited again."""
        found = await self.find_issued(number, supplier_id)
        if found is not None:
            return DepositReceipt(numero_flux=found.numero_flux, syntax=syntax, created=False,
                                  invoice_id=found.invoice_id, date_depot=found.deposited_at)
        return await self.deposit_flux(data, name, syntax)

    async def history(self, invoice_id: int) -> InvoiceHistory:
        """``consulter/historique``: current status and every status change."""
        answer = await self._post(f"{FACTURES}/consulter/historique", {"idFacture": invoice_id})
        return models.history(invoice_id, answer)

    # ------------------------------------------------------------ recipient side

    async def search_received(self, since: date | None = None, *, status: str | None = None
                              ) -> list[InvoiceSummary]:
        """``rechercher/recipiendaire``: invoices received by the account's structures."""
        criteria: dict[str, Any] = {}
        if since is not None:
            criteria["periodeDateDepotDu"] = since.isoformat()
        if status:
            criteria["statutCourant"] = status
        if self.structure_id is not None:
            criteria["idDestinataire"] = self.structure_id
        rows = await self._pages(f"{FACTURES}/rechercher/recipiendaire", criteria,
                                 "paramRecherche", _pages_at_top)
        return [models.received_row(r) for r in rows]

    async def download(self, invoice_id: int, fmt: str = "XML", number: str = ""
                       ) -> tuple[str, bytes]:
        """``telecharger/groupe`` for one invoice: (file name, content); a ZIP of one
        file is opened. The answer names no file: ``number`` (else the id) does."""
        answer = await self._post(f"{FACTURES}/telecharger/groupe", {
            "listeFacture": [{"idFacture": invoice_id}], "format": fmt})
        try:
            content = base64.b64decode(answer["fichierResultat"], validate=True)
        except (KeyError, TypeError, ValueError) as exc:
            raise PermanentError(f"Chorus Pro: download of {invoice_id}: no fichierResultat "
                                 f"({exc})", partner=PARTNER) from None
        if content.startswith(b"PK\x03\x04"):
            return _single_member(invoice_id, content)
        ext = "pdf" if content.startswith(b"%PDF") else "xml"
        return f"{number or f'facture-{invoice_id}'}.{ext}", content

    async def update_received(self, invoice_id: int, status: str, reason: str = "",
                              mandate: str = "") -> dict[str, Any]:
        """``traiter/recue``: set a received invoice's status (never re-posted blindly)."""
        body: dict[str, Any] = {"idFacture": invoice_id, "nouveauStatut": status,
                                "motif": reason}
        if mandate:
            body["numeroDPMandat"] = mandate
        return await self._post(f"{FACTURES}/traiter/recue", body, attempts=1)

    async def set_received_status(self, invoice_id: int, status: str, reason: str = ""
                                  ) -> tuple[InvoiceHistory, bool]:
        """Update once: a status already in the history is not set again."""
        before = await self.history(invoice_id)
        if before.status == status or any(e.status == status for e in before.events):
            return before, False
        await self.update_received(invoice_id, status, reason)
        return await self.history(invoice_id), True

    async def aclose(self) -> None:
        await self.http.aclose()


def _pages_in_parametres(answer: dict[str, Any]) -> tuple[int, int]:
    """``rechercher/fournisseur`` pages: ``parametresRetour.pageCourante/pages``."""
    info = answer.get("parametresRetour") or {}
    return int(info.get("pageCourante") or 1), int(info.get("pages") or 1)


def _pages_at_top(answer: dict[str, Any]) -> tuple[int, int]:
    """``rechercher/recipiendaire`` pages: ``pageCourante``/``pages`` at the top."""
    return int(answer.get("pageCourante") or 1), int(answer.get("pages") or 1)


def _single_member(invoice_id: int, content: bytes) -> tuple[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            if len(names) != 1:
                raise PermanentError(f"Chorus Pro: download of {invoice_id}: the ZIP holds "
                                     f"{len(names)} files, not one", partner=PARTNER)
            return Path(names[0]).name, archive.read(names[0])
    except zipfile.BadZipFile as exc:
        raise PermanentError(f"Chorus Pro: download of {invoice_id}: bad ZIP ({exc})",
                             partner=PARTNER) from None


def _code(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        value = resp.json()
    except ValueError:
        if resp.status_code >= 500:
            raise TransientError(f"{PARTNER}: HTTP {resp.status_code}", partner=PARTNER,
                                 status=resp.status_code) from None
        raise PermanentError(f"{PARTNER}: answer is not JSON (HTTP {resp.status_code}): "
                             f"{resp.text[:200]}", partner=PARTNER) from None
    if not isinstance(value, dict):
        raise PermanentError(f"{PARTNER}: answer is not a JSON object (HTTP "
                             f"{resp.status_code})", partner=PARTNER)
    return value

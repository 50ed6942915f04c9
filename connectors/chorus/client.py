"""Chorus Pro API client, as reached through the PISTE gateway.

PISTE hands out OAuth2 bearer tokens (client credentials grant on
``/api/oauth/token``); every Chorus Pro call also carries the technical account
in the ``cpro-account`` header (base64 of ``login:password``). Calls are JSON
``POST``s under ``/cpro/``; answers carry ``codeRetour`` (0 = done) and ``libelle``.

Supplier side: ``deposer/flux`` (Factur-X PDF, UBL, CII, PIVOT, base64 in
``fichierFlux`` with its ``syntaxeFlux``), ``consulterCR`` (integration of a
deposited flow), ``rechercher/fournisseur`` and ``consulter/historique`` (status
life-cycle). Recipient side: ``rechercher/recipiendaire``, ``telecharger/groupe``
and ``traiter/recue`` (status update).

Exactly-once: ``submit_invoice`` looks the invoice up (supplier + number) before
depositing it, and ``set_received_status`` reads the history before updating.
"""

from __future__ import annotations

import base64
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, Field

from connectors.errors import BusinessRefusal, PermanentError, TransientError
from connectors.http import call, raise_for_status, resolve_url

PARTNER = "chorus"
TOKEN_PATH = "/api/oauth/token"
FACTURES = "/cpro/factures/v1"
TRANSVERSES = "/cpro/transverses/v1"

# The invoice life-cycle as Chorus Pro reports it (statutCourantCode).
REFUSED_STATUSES = frozenset({"REJETEE", "SUSPENDUE", "A_RECYCLER"})
PAID_STATUS = "MISE_EN_PAIEMENT"
LIFECYCLE = ("DEPOSEE", "EN_COURS_ACHEMINEMENT", "MISE_A_DISPOSITION", "SERVICE_FAIT",
             "MANDATEE", "MISE_A_DISPOSITION_COMPTABLE", "COMPTABILISEE", "MISE_EN_PAIEMENT")


class DepositReceipt(BaseModel):
    """Answer of ``deposer/flux``: the flow number to follow."""

    numero_flux: str
    date_depot: str = ""
    syntax: str = ""
    created: bool = True
    invoice_id: int | None = None


class FluxReport(BaseModel):
    """Answer of ``consulterCR``: integration state of a deposited flow."""

    numero_flux: str
    state: str  # IN_RECU, IN_INTEGRE, IN_REJETE, ...
    invoice_ids: list[int] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    raw: dict[str, Any] = Field(default_factory=dict)

    @property
    def integrated(self) -> bool:
        return self.state in ("IN_INTEGRE", "IN_INTEGRE_PARTIEL")

    @property
    def rejected(self) -> bool:
        return self.state in ("IN_REJETE", "IN_INCIDENTE")


class StatusEvent(BaseModel):
    status: str
    at: str = ""
    comment: str = ""


class InvoiceHistory(BaseModel):
    """Answer of ``consulter/historique``: current status and its history."""

    invoice_id: int
    number: str = ""
    status: str
    events: list[StatusEvent] = Field(default_factory=list)
    raw: dict[str, Any] = Field(default_factory=dict)


class InvoiceSummary(BaseModel):
    """One row of ``rechercher/fournisseur`` or ``rechercher/recipiendaire``."""

    invoice_id: int
    number: str
    status: str = ""
    deposited_at: str = ""
    supplier_id: str = ""
    supplier_name: str = ""
    recipient_id: str = ""
    amount: str = ""
    numero_flux: str = ""


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
        self.user_id = user_id
        self.structure_id = structure_id
        self.page_size = page_size
        self.poll_seconds = poll_seconds  # how often the steps ask about a deposited invoice
        self.http = httpx.AsyncClient(timeout=timeout)
        self._token: str | None = None
        self._token_until = 0.0

    @classmethod
    def from_options(cls, options: dict[str, Any], *, var_dir: Path) -> ChorusClient:
        api = resolve_url(options["url"], var_dir)
        oauth = options.get("oauth_url")
        oauth = resolve_url(oauth, var_dir) if oauth else api.rstrip("/") + TOKEN_PATH
        return cls(api, oauth_url=oauth, client_id=options.get("client_id", "demat"),
                   client_secret=options.get("client_secret", ""),
                   login=options.get("login", "TECH_demat@cpro.fr"),
                   password=options.get("password", ""),
                   user_id=int(options.get("user_id", 0)),
                   structure_id=options.get("structure_id"),
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

    async def _post(self, path: str, body: dict[str, Any], *, attempts: int = 3
                    ) -> dict[str, Any]:
        """POST a JSON call; a 401 renews the token once; ``codeRetour`` != 0 raises."""
        async def post() -> httpx.Response:
            resp = await self._send(path, body, await self.token())
            if resp.status_code == 401:
                resp = await self._send(path, body, await self.token(renew=True))
            if resp.status_code >= 500 or resp.status_code in (401, 403, 404, 429):
                raise_for_status(resp, PARTNER)  # transient 5xx/429 are retried by call()
            return resp

        resp = await call(PARTNER, post, attempts=attempts)
        answer = _json(resp)
        code = answer.get("codeRetour", 0 if resp.status_code < 400 else -1)
        if resp.status_code >= 400 or code not in (0, "0"):
            call_name = "/".join(path.rsplit("/", 2)[-2:])
            raise BusinessRefusal(f"Chorus Pro {call_name}: codeRetour {code}: "
                                  f"{answer.get('libelle') or resp.text[:300]}",
                                  partner=PARTNER, status=resp.status_code)
        return answer

    async def _send(self, path: str, body: dict[str, Any], token: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "cpro-account": self.account,
                   "Content-Type": "application/json;charset=utf-8",
                   "Accept": "application/json"}
        return await self.http.post(self.api_url + path, json=body, headers=headers)

    def _with_user(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"idUtilisateurCourant": self.user_id, **body}

    # ------------------------------------------------------------ supplier side

    async def deposit_flux(self, data: bytes, name: str, syntax: str, *,
                           signed: bool = False) -> DepositReceipt:
        """``deposer/flux``: deposit one invoice file; never re-posted blindly."""
        answer = await self._post(f"{FACTURES}/deposer/flux", self._with_user({
            "fichierFlux": base64.b64encode(data).decode(), "nomFichier": name,
            "syntaxeFlux": syntax, "avecSignature": signed}), attempts=1)
        return DepositReceipt(numero_flux=answer["numeroFluxDepot"],
                              date_depot=str(answer.get("dateDepot", "")),
                              syntax=str(answer.get("syntaxeFlux", syntax)))

    async def flux_report(self, numero_flux: str) -> FluxReport:
        """``consulterCR``: is the deposited flow integrated, rejected, still queued?"""
        answer = await self._post(f"{TRANSVERSES}/consulterCR", self._with_user(
            {"numeroFluxDepot": numero_flux}))
        return FluxReport(numero_flux=numero_flux, state=str(answer.get("etatCourantFlux", "")),
                          invoice_ids=[int(i) for i in answer.get("listeIdFacture") or []],
                          errors=[str(e.get("libelleErreur", e)) for e in
                                  answer.get("listeErreurs") or []], raw=answer)

    async def find_issued(self, number: str, supplier_id: str = "") -> InvoiceSummary | None:
        """``rechercher/fournisseur``: the supplier's invoice with this number, if deposited."""
        rows = await self._search(f"{FACTURES}/rechercher/fournisseur",
                                  {"numeroFacture": number})
        for row in rows:
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
        answer = await self._post(f"{FACTURES}/consulter/historique", self._with_user(
            {"idFacture": invoice_id}))
        rows = (answer.get("historiquesDesStatuts") or {}).get("histoStatut") or []
        events = [StatusEvent(status=r.get("statutCode", ""),
                              at=str(r.get("statutDateHeureChangement", "")),
                              comment=r.get("statutCommentaire") or "") for r in rows]
        return InvoiceHistory(invoice_id=invoice_id, number=answer.get("numeroFacture", ""),
                              status=answer.get("statutCourantCode", ""), events=events,
                              raw=answer)

    # ------------------------------------------------------------ recipient side

    async def search_received(self, since: date | None = None, *, status: str | None = None
                              ) -> list[InvoiceSummary]:
        """``rechercher/recipiendaire``: invoices received by the account's structures."""
        criteria: dict[str, Any] = {}
        if since is not None:
            criteria["dateDepotDebut"] = since.isoformat()
        if status:
            criteria["statut"] = status
        if self.structure_id is not None:
            criteria["idStructure"] = self.structure_id
        return await self._search(f"{FACTURES}/rechercher/recipiendaire", criteria)

    async def download(self, invoice_id: int, fmt: str = "XML") -> tuple[str, bytes]:
        """``telecharger/groupe`` for one invoice: (file name, content)."""
        answer = await self._post(f"{FACTURES}/telecharger/groupe", self._with_user(
            {"listeFacture": [{"idFacture": invoice_id}], "format": fmt}))
        try:
            content = base64.b64decode(answer["ficResultat"], validate=True)
        except (KeyError, ValueError) as exc:
            raise PermanentError(f"Chorus Pro: download of {invoice_id}: no file ({exc})",
                                 partner=PARTNER) from None
        return str(answer.get("nomFichier") or f"facture-{invoice_id}"), content

    async def update_received(self, invoice_id: int, status: str, reason: str = "",
                              mandate: str = "") -> dict[str, Any]:
        """``traiter/recue``: set a received invoice's status (never re-posted blindly)."""
        body: dict[str, Any] = {"idFacture": invoice_id, "nouveauStatut": status,
                                "motif": reason}
        if mandate:
            body["numeroDPMandat"] = mandate
        return await self._post(f"{FACTURES}/traiter/recue", self._with_user(body), attempts=1)

    async def set_received_status(self, invoice_id: int, status: str, reason: str = ""
                                  ) -> tuple[InvoiceHistory, bool]:
        """Update once: a status already in the history is not set again."""
        before = await self.history(invoice_id)
        if before.status == status or any(e.status == status for e in before.events):
            return before, False
        await self.update_received(invoice_id, status, reason)
        return await self.history(invoice_id), True

    # ------------------------------------------------------------ helpers

    async def _search(self, path: str, criteria: dict[str, Any]) -> list[InvoiceSummary]:
        rows: list[InvoiceSummary] = []
        page = 1
        while True:
            answer = await self._post(path, self._with_user({
                **criteria, "pageResultat": page, "nbResultatsParPage": self.page_size}))
            rows += [_summary(r) for r in answer.get("listeFactures") or []]
            pages = int((answer.get("parametresRetour") or {}).get("pages", 1) or 1)
            if page >= pages:
                return rows
            page += 1

    async def aclose(self) -> None:
        await self.http.aclose()


def _summary(row: dict[str, Any]) -> InvoiceSummary:
    supplier = row.get("fournisseur") or {}
    return InvoiceSummary(
        invoice_id=int(row["idFacture"]), number=str(row.get("numeroFacture", "")),
        status=str(row.get("statut", "")), deposited_at=str(row.get("dateDepot", "")),
        supplier_id=str(supplier.get("identifiant", "")),
        supplier_name=str(supplier.get("libelle", "")),
        recipient_id=str((row.get("destinataire") or {}).get("identifiant", "")),
        amount=str(row.get("montantTTC", "")), numero_flux=str(row.get("numeroFluxDepot", "")))


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        value = resp.json()
    except ValueError:
        if resp.status_code >= 500:
            raise TransientError(f"{PARTNER}: HTTP {resp.status_code}", partner=PARTNER,
                                 status=resp.status_code) from None
        raise PermanentError(f"{PARTNER}: answer is not JSON (HTTP {resp.status_code}): "
                             f"{resp.text[:200]}", partner=PARTNER) from None
    return value if isinstance(value, dict) else {"value": value}

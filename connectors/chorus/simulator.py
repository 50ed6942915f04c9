"""A Chorus Pro simulator speaking the PISTE/Chorus Pro JSON API.

It issues OAuth2 tokens (``/api/oauth/token``), demands the bearer and the
``cpro-account`` header, validates every deposited invoice with the bus's own
readers (an invalid file makes the flow ``IN_REJETE`` with the schema's message),
refuses a second invoice with the same supplier and number (Chorus Pro's
"doublon"), and moves deposited invoices through the status life-cycle, one
status every ``step_delay`` seconds:

    DEPOSEE → EN_COURS_ACHEMINEMENT → MISE_A_DISPOSITION → MANDATEE
            → MISE_A_DISPOSITION_COMPTABLE → MISE_EN_PAIEMENT

Scenarios (``/_sim/scenarios`` by invoice number, or a marker in the number:
``REJET``, ``SUSPEND``, ``STUCK``) end in ``REJETEE``/``SUSPENDUE`` or stay put.
Received invoices (recipient side) are seeded per technical account
(``seed_received``) or injected with ``POST /_sim/received``. ``GET /_sim/counts``
counts deposits per supplier+number and status updates per invoice+status.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from connectors.chorus.samples import DEMO_BUYER, DEMO_SUPPLIER, DemoInvoice, ubl_xml
from connectors.simulator import (
    FailurePlan,
    HttpSimulator,
    SubmissionCounter,
)
from schemas.invoice import CHORUS_SYNTAX, InvoiceError, InvoiceFormat, read_invoice

OUTBOUND_PLAN = ("EN_COURS_ACHEMINEMENT", "MISE_A_DISPOSITION", "MANDATEE",
                 "MISE_A_DISPOSITION_COMPTABLE", "MISE_EN_PAIEMENT")
RECIPIENT_STATUSES = frozenset({
    "MISE_A_DISPOSITION_COMPTABLE", "SERVICE_FAIT", "MANDATEE", "COMPTABILISEE",
    "MISE_EN_PAIEMENT", "REJETEE", "SUSPENDUE", "A_RECYCLER", "PRISE_EN_COMPTE_DESTINATAIRE"})
SCENARIO_MARKERS = {"REJET": "rejected", "SUSPEND": "suspended", "STUCK": "stuck"}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class SimInvoice:
    """One invoice on the platform: its file, parties and status history."""

    id: int
    number: str
    supplier_id: str
    supplier_name: str
    buyer_id: str
    amount: str
    file: bytes
    name: str
    syntax: str
    flux: str
    account: str  # technical account that deposited it ("" for received ones)
    recipient: str = ""  # technical account that receives it
    scenario: str = "paid"
    created: float = field(default_factory=time.monotonic)
    history: list[tuple[str, str, str]] = field(default_factory=list)  # status, at, comment
    done: int = 0

    @property
    def status(self) -> str:
        return self.history[-1][0]

    def set(self, status: str, comment: str = "") -> None:
        self.history.append((status, _now(), comment))


@dataclass
class SimFlux:
    numero: str
    account: str
    state: str
    created: float
    invoice_id: int | None = None
    errors: list[str] = field(default_factory=list)
    final_state: str = "IN_INTEGRE"


class ChorusSimulator(HttpSimulator):
    """The FastAPI app, its invoices, flows, tokens and counters."""

    title = "Chorus Pro simulator"

    def counts(self) -> dict[str, Any]:
        return {"deposits": self.deposits.snapshot(), "duplicates": self.deposits.duplicates(),
                "status_updates": self.status_updates.snapshot()}


    def __init__(self, *, step_delay: float = 0.0, failures: FailurePlan | None = None,
                 clients: dict[str, str] | None = None, token_ttl: int = 3600,
                 seed_received: int = 2, scenarios: dict[str, str] | None = None) -> None:
        self.step_delay = step_delay
        super().__init__(failures)
        self.clients = clients  # None: any client id/secret gets a token
        self.token_ttl = token_ttl
        self.seed_received = seed_received
        self.scenarios = dict(scenarios or {})
        self.deposits = SubmissionCounter()
        self.status_updates = SubmissionCounter()
        self.tokens: dict[str, float] = {}
        self.invoices: dict[int, SimInvoice] = {}
        self.fluxes: dict[str, SimFlux] = {}
        self.seeded: set[str] = set()
        self._serial = 0
        self.lock = threading.RLock()
        self.app = self._build()

    # ------------------------------------------------------------ server

    # ------------------------------------------------------------ app

    def _build(self) -> FastAPI:
        app = self.new_app()
        sim = self

        @app.middleware("http")
        async def gate(request: Request, call_next: Any) -> Response:
            if not request.url.path.startswith(("/cpro/", "/api/oauth")):
                return await call_next(request)
            outcome = sim.failures.draw()
            if outcome == "error":
                return Response("injected failure", status_code=503)
            if request.url.path.startswith("/cpro/"):
                refusal = sim._authorize(request)
                if refusal is not None:
                    return refusal
            response = await call_next(request)
            if outcome == "timeout":  # the effect happened, the answer is lost
                await asyncio.sleep(sim.failures.timeout_seconds)
            return response

        @app.post("/api/oauth/token")
        async def token(request: Request) -> JSONResponse:
            form = await request.form()
            if form.get("grant_type") != "client_credentials":
                return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
            cid, secret = str(form.get("client_id") or ""), str(form.get("client_secret") or "")
            if sim.clients is not None and sim.clients.get(cid) != secret:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            value = secrets.token_urlsafe(24)
            with sim.lock:
                sim.tokens[value] = time.monotonic() + sim.token_ttl
            return JSONResponse({"access_token": value, "token_type": "Bearer",
                                 "expires_in": sim.token_ttl, "scope": "openid"})

        @app.get("/_sim/invoices")
        async def invoices() -> list[dict]:
            sim._advance()
            with sim.lock:
                return [{"id": i.id, "number": i.number, "supplier": i.supplier_id,
                         "status": i.status, "account": i.account, "recipient": i.recipient,
                         "history": [h[0] for h in i.history]} for i in sim.invoices.values()]

        @app.post("/_sim/scenarios")
        async def set_scenarios(mapping: dict[str, str]) -> dict:
            sim.scenarios.update(mapping)
            return sim.scenarios

        @app.post("/_sim/received")
        async def received(body: dict) -> dict:
            data = base64.b64decode(body["file"])
            inv = sim.receive(str(body["recipient"]), data, str(body.get("name", "facture")))
            return {"idFacture": inv.id}

        routes = {
            "/cpro/factures/v1/deposer/flux": sim._deposit,
            "/cpro/transverses/v1/consulterCR": sim._report,
            "/cpro/factures/v1/rechercher/fournisseur": sim._search_issued,
            "/cpro/factures/v1/rechercher/recipiendaire": sim._search_received,
            "/cpro/factures/v1/consulter/historique": sim._history,
            "/cpro/factures/v1/telecharger/groupe": sim._download,
            "/cpro/factures/v1/traiter/recue": sim._update_received,
        }
        for path, handler in routes.items():
            app.add_api_route(path, _endpoint(sim, handler), methods=["POST"])
        return app

    def _authorize(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        with self.lock:
            until = self.tokens.get(token)
        if until is None or until < time.monotonic():
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        try:
            login = base64.b64decode(request.headers.get("cpro-account", ""), validate=True
                                     ).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            login = ""
        if not login:
            return _error(401, 20001, "En-tête cpro-account absent ou invalide")
        request.state.account = login
        return None

    # ------------------------------------------------------------ life cycle

    def _advance(self) -> None:
        now = time.monotonic()
        with self.lock:
            for flux in self.fluxes.values():
                if flux.state == "IN_RECU" and (self.step_delay <= 0
                                                or now - flux.created >= self.step_delay):
                    flux.state = flux.final_state
            for inv in self.invoices.values():
                plan = self._plan(inv)
                steps = (len(plan) if self.step_delay <= 0
                         else int((now - inv.created) / self.step_delay))
                while inv.done < min(steps, len(plan)):
                    status, comment = plan[inv.done]
                    inv.set(status, comment)
                    inv.done += 1

    def _plan(self, inv: SimInvoice) -> list[tuple[str, str]]:
        if not inv.account:  # received invoices move when the recipient says so
            return []
        plan = [(s, "") for s in OUTBOUND_PLAN]
        if inv.scenario == "stuck":
            return plan[:2]
        if inv.scenario == "rejected":
            return [*plan[:2], ("REJETEE", "Facture rejetée : engagement juridique inconnu")]
        if inv.scenario == "suspended":
            return [*plan[:2], ("SUSPENDUE", "Pièce justificative manquante")]
        return plan

    def _scenario(self, number: str) -> str:
        if number in self.scenarios:
            return self.scenarios[number]
        upper = number.upper()
        return next((s for m, s in SCENARIO_MARKERS.items() if m in upper), "paid")

    def _new_id(self) -> int:
        return max(self.invoices, default=1000) + 1

    def receive(self, recipient: str, data: bytes, name: str) -> SimInvoice:
        """Put an invoice into ``recipient``'s mailbox (as if a supplier deposited it)."""
        info = read_invoice(data)
        with self.lock:
            inv = SimInvoice(id=self._new_id(), number=info.number, supplier_id=info.supplier_id,
                             supplier_name=info.supplier_name, buyer_id=info.buyer_id,
                             amount=info.total, file=data, name=name,
                             syntax=CHORUS_SYNTAX[info.format], flux=self._flux_number(),
                             account="", recipient=recipient)
            inv.set("DEPOSEE")
            inv.set("MISE_A_DISPOSITION")
            self.invoices[inv.id] = inv
            return inv

    def _seed(self, account: str) -> None:
        with self.lock:
            if account in self.seeded or self.seed_received <= 0:
                return
            self.seeded.add(account)
        for n in range(1, self.seed_received + 1):
            number = f"FR-{zlib.crc32(account.encode()) % 10_000:04d}-{n:03d}"
            xml = ubl_xml(DemoInvoice(number, DEMO_SUPPLIER, DEMO_BUYER,
                                      label=f"Fournitures de bureau, lot {n}"))
            self.receive(account, xml, f"{number}.xml")

    def _flux_number(self) -> str:
        with self.lock:
            self._serial += 1
            return f"CPP{self._serial:022d}"

    # ------------------------------------------------------------ endpoints

    def _deposit(self, account: str, body: dict) -> Response:
        syntax, name = str(body.get("syntaxeFlux", "")), str(body.get("nomFichier", ""))
        if syntax not in CHORUS_SYNTAX.values():
            return _error(400, 20002, f"syntaxeFlux inconnue : {syntax!r}")
        try:
            data = base64.b64decode(str(body.get("fichierFlux", "")), validate=True)
        except binascii.Error:
            return _error(400, 20003, "fichierFlux n'est pas encodé en base64")
        if not data or not name:
            return _error(400, 20004, "fichierFlux et nomFichier sont obligatoires")
        with self.lock:
            numero = self._flux_number()
            flux = SimFlux(numero=numero, account=account, state="IN_RECU",
                           created=time.monotonic())
            self.fluxes[numero] = flux
        try:
            info = read_invoice(data)
        except InvoiceError as exc:
            self.deposits.add(f"{account}/{name}")
            flux.final_state, flux.errors = "IN_REJETE", [str(exc)]
            return _ok(numeroFluxDepot=numero, dateDepot=date.today().isoformat(),
                       syntaxeFlux=syntax)
        self.deposits.add(f"{info.supplier_id}/{info.number}")
        expected = CHORUS_SYNTAX[InvoiceFormat(info.format)]
        with self.lock:
            if syntax != expected:
                flux.final_state = "IN_REJETE"
                flux.errors = [f"syntaxe {syntax} déclarée, fichier {info.format.value}"]
            elif self._issued(info.supplier_id, info.number) is not None:
                flux.final_state = "IN_REJETE"
                flux.errors = [f"Doublon : la facture {info.number} du fournisseur "
                               f"{info.supplier_id} existe déjà"]
            else:
                inv = SimInvoice(id=self._new_id(), number=info.number,
                                 supplier_id=info.supplier_id, supplier_name=info.supplier_name,
                                 buyer_id=info.buyer_id, amount=info.total, file=data,
                                 name=name, syntax=syntax, flux=numero, account=account,
                                 scenario=self._scenario(info.number))
                inv.set("DEPOSEE")
                self.invoices[inv.id] = inv
                flux.invoice_id = inv.id
        return _ok(numeroFluxDepot=numero, dateDepot=date.today().isoformat(),
                   syntaxeFlux=syntax)

    def _issued(self, supplier_id: str, number: str) -> SimInvoice | None:
        return next((i for i in self.invoices.values() if i.account and i.number == number
                     and i.supplier_id == supplier_id), None)

    def _report(self, account: str, body: dict) -> Response:
        flux = self.fluxes.get(str(body.get("numeroFluxDepot", "")))
        if flux is None or flux.account != account:
            return _error(404, 20010, "Flux inconnu pour ce compte")
        return _ok(numeroFluxDepot=flux.numero, etatCourantFlux=flux.state,
                   listeIdFacture=[flux.invoice_id] if flux.invoice_id and
                   flux.state == "IN_INTEGRE" else [],
                   listeErreurs=[{"libelleErreur": e} for e in flux.errors]
                   if flux.state == "IN_REJETE" else [])

    def _search_issued(self, account: str, body: dict) -> Response:
        number = body.get("numeroFacture")
        with self.lock:
            rows = [i for i in self.invoices.values() if i.account == account
                    and (number is None or i.number == number)]
        return _page(rows, body)

    def _search_received(self, account: str, body: dict) -> Response:
        self._seed(account)
        since = str(body.get("dateDepotDebut") or "")
        status = body.get("statut")
        with self.lock:
            rows = [i for i in self.invoices.values() if i.recipient == account
                    and i.history[0][1][:10] >= since and (not status or i.status == status)]
        return _page(rows, body)

    def _visible(self, account: str, invoice_id: Any) -> SimInvoice | None:
        try:
            inv = self.invoices.get(int(invoice_id))
        except (TypeError, ValueError):
            return None
        return inv if inv is not None and account in (inv.account, inv.recipient) else None

    def _history(self, account: str, body: dict) -> Response:
        inv = self._visible(account, body.get("idFacture"))
        if inv is None:
            return _error(404, 20020, "Facture inconnue pour ce compte")
        events = [{"statutCode": s, "statutDateHeureChangement": at, "statutCommentaire": c}
                  for s, at, c in inv.history]
        return _ok(idFacture=inv.id, numeroFacture=inv.number, statutCourantCode=inv.status,
                   historiquesDesStatuts={"histoStatut": events})

    def _download(self, account: str, body: dict) -> Response:
        wanted = body.get("listeFacture") or []
        if len(wanted) != 1:
            return _error(400, 20030, "Une facture par téléchargement dans ce simulateur")
        inv = self._visible(account, wanted[0].get("idFacture"))
        if inv is None:
            return _error(404, 20020, "Facture inconnue pour ce compte")
        return _ok(ficResultat=base64.b64encode(inv.file).decode(), nomFichier=inv.name,
                   format=body.get("format", "XML"))

    def _update_received(self, account: str, body: dict) -> Response:
        inv = self._visible(account, body.get("idFacture"))
        if inv is None or inv.recipient != account:
            return _error(404, 20020, "Facture reçue inconnue pour ce compte")
        status = str(body.get("nouveauStatut", ""))
        if status not in RECIPIENT_STATUSES:
            return _error(400, 20040, f"nouveauStatut {status!r} non autorisé")
        if inv.status in ("REJETEE", "MISE_EN_PAIEMENT"):
            return _error(400, 20041, f"La facture est au statut final {inv.status}")
        if status in ("REJETEE", "SUSPENDUE") and not body.get("motif"):
            return _error(400, 20042, "Le motif est obligatoire pour ce statut")
        self.status_updates.add(f"{inv.id}/{status}")
        with self.lock:
            inv.set(status, str(body.get("motif") or ""))
        return _ok(idFacture=inv.id, numeroFacture=inv.number, statutFacture=status,
                   dateTraitement=_now())


def _endpoint(sim: ChorusSimulator, handler: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, 20000, "Corps JSON invalide")
        if not isinstance(body, dict):
            return _error(400, 20000, "Corps JSON invalide")
        sim._advance()
        return handler(request.state.account, body)

    return endpoint


def _ok(**fields: Any) -> JSONResponse:
    return JSONResponse({"codeRetour": 0, "libelle": "TRAITEMENT_SUCCES", **fields})


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"codeRetour": code, "libelle": message}, status_code=status)


def _page(rows: list[SimInvoice], body: dict) -> Response:
    size = max(1, int(body.get("nbResultatsParPage") or 100))
    page = max(1, int(body.get("pageResultat") or 1))
    chunk = rows[(page - 1) * size: page * size]
    listing = [{"idFacture": i.id, "numeroFacture": i.number, "statut": i.status,
                "dateDepot": i.history[0][1], "numeroFluxDepot": i.flux,
                "montantTTC": i.amount,
                "fournisseur": {"identifiant": i.supplier_id, "libelle": i.supplier_name},
                "destinataire": {"identifiant": i.buyer_id}} for i in chunk]
    pages = max(1, -(-len(rows) // size))
    return _ok(listeFactures=listing, parametresRetour={
        "total": len(rows), "pages": pages, "pageCourante": page, "nbResultatsParPage": size})

"""A Chorus Pro simulator speaking the PISTE/Chorus Pro JSON API (see ``connectors/README.md``).

It issues OAuth2 tokens (form-encoded client credentials on ``/api/oauth/token``),
demands the bearer (else PISTE's 401) and the ``cpro-account`` header (base64
``login:password``, else a 403), refuses a malformed JSON body or a field the
service does not publish (HTTP 400, ``codeRetour``/``libelle``), validates every
deposited invoice with the bus's own readers (an invalid file makes the flow
``IN_REJETE`` with the schema's message in ``consulterCRDetaille``), rejects a
second invoice with the same supplier and number (Chorus Pro's "doublon"), and
moves integrated invoices through the status life-cycle, one status every
``step_delay`` seconds:

    DEPOSEE → EN_COURS_ACHEMINEMENT → MISE_A_DISPOSITION → MANDATEE
            → MISE_A_DISPOSITION_COMPTABLE → MISE_EN_PAIEMENT

An invoice is found by ``rechercher/fournisseur`` once its flow is integrated.
Searches that find nothing answer HTTP 200 with ``codeRetour`` 20000.
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
import json
import secrets
import threading
import time
import zlib
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from connectors.chorus.samples import DEMO_BUYER, DEMO_SUPPLIER, DemoInvoice, ubl_xml
from connectors.chorus.sim_contract import BAD_BODY, check_body, gateway_refusal, refusal
from connectors.chorus.sim_services import ChorusServices
from connectors.chorus.sim_state import SimFlux, SimInvoice, now
from connectors.simulator import FailurePlan, HttpSimulator, SubmissionCounter
from schemas.invoice import CHORUS_SYNTAX, read_invoice

OUTBOUND_PLAN = ("EN_COURS_ACHEMINEMENT", "MISE_A_DISPOSITION", "MANDATEE",
                 "MISE_A_DISPOSITION_COMPTABLE", "MISE_EN_PAIEMENT")
SCENARIO_MARKERS = {"REJET": "rejected", "SUSPEND": "suspended", "STUCK": "stuck"}


class ChorusSimulator(ChorusServices, HttpSimulator):
    """The FastAPI app, its invoices, flows, tokens and counters."""

    title = "Chorus Pro simulator"

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
        # ids never come again after a restart (a real Chorus Pro never reuses one): an
        # importer's key ``chorus-in:<id>`` stays one invoice's
        self._first_id = int(time.time() * 1000)
        self.lock = threading.RLock()
        self.app = self._build()

    def counts(self) -> dict[str, Any]:
        return {"deposits": self.deposits.snapshot(), "duplicates": self.deposits.duplicates(),
                "status_updates": self.status_updates.snapshot()}

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
                denied = sim._authorize(request)
                if denied is not None:
                    return denied
            response = await call_next(request)
            if outcome == "timeout":  # the effect happened, the answer is lost
                await asyncio.sleep(sim.failures.timeout_seconds)
            return response

        app.add_api_route("/api/oauth/token", self._token_endpoint, methods=["POST"])
        self._add_control(app)
        for service, handler in self.services().items():
            app.add_api_route(service_path(service), _endpoint(sim, service, handler),
                              methods=["POST"])
        return app

    async def _token_endpoint(self, request: Request) -> JSONResponse:
        form = await request.form()
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        cid, secret = str(form.get("client_id") or ""), str(form.get("client_secret") or "")
        if not cid or (self.clients is not None and self.clients.get(cid) != secret):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        value = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[value] = time.monotonic() + self.token_ttl
        return JSONResponse({"access_token": value, "token_type": "Bearer",
                             "expires_in": self.token_ttl, "scope": "openid"})

    def _add_control(self, app: FastAPI) -> None:
        sim = self

        @app.get("/_sim/invoices")
        async def invoices() -> list[dict]:
            sim.advance()
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

    def _authorize(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        with self.lock:
            until = self.tokens.get(token)
        if until is None or until < time.monotonic():
            return gateway_refusal(401, "Unauthorized", "Cannot pass the security checks "
                                   "that are required by the target API or operation")
        try:
            login, _, password = base64.b64decode(
                request.headers.get("cpro-account", ""), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            login = password = ""
        if not login or not password:
            return gateway_refusal(403, "Forbidden", "cpro-account : compte technique absent "
                                   "ou illisible (base64 de login:motdepasse attendu)")
        request.state.account = login
        return None

    # ------------------------------------------------------------ life cycle

    def advance(self) -> None:
        """Move flows and invoices on, as time passes."""
        moment = time.monotonic()
        with self.lock:
            for flux in self.fluxes.values():
                age = moment - flux.created
                if flux.state in ("IN_RECU", "IN_EN_COURS_TRAITEMENT_CPP") and (
                        self.step_delay <= 0 or age >= 2 * self.step_delay):
                    self._settle(flux)
                elif flux.state == "IN_RECU" and age >= self.step_delay:
                    flux.state, flux.changed_at = "IN_EN_COURS_TRAITEMENT_CPP", now()
            for inv in self.invoices.values():
                plan = self._plan(inv)
                steps = (len(plan) if self.step_delay <= 0
                         else int((moment - inv.created) / self.step_delay))
                while inv.done < min(steps, len(plan)):
                    status, comment = plan[inv.done]
                    inv.set(status, comment)
                    inv.done += 1

    def _settle(self, flux: SimFlux) -> None:
        flux.state, flux.changed_at = flux.final_state, now()
        inv = self.invoices.get(flux.invoice_id or 0)
        if inv is not None and flux.state == "IN_INTEGRE" and not inv.history:
            inv.created = time.monotonic()
            inv.set("DEPOSEE")

    def _plan(self, inv: SimInvoice) -> list[tuple[str, str]]:
        if not inv.account or not inv.history:  # received ones move when the recipient says
            return []
        plan = [(s, "") for s in OUTBOUND_PLAN]
        if inv.scenario == "stuck":
            return plan[:2]
        if inv.scenario == "rejected":
            return [*plan[:2], ("REJETEE", "Facture rejetée : engagement juridique inconnu")]
        if inv.scenario == "suspended":
            return [*plan[:2], ("SUSPENDUE", "Pièce justificative manquante")]
        return plan

    def scenario(self, number: str) -> str:
        if number in self.scenarios:
            return self.scenarios[number]
        upper = number.upper()
        return next((s for m, s in SCENARIO_MARKERS.items() if m in upper), "paid")

    def new_id(self) -> int:
        return max(self.invoices, default=self._first_id) + 1

    def flux_number(self) -> str:
        with self.lock:
            self._serial += 1
            return f"CPP{self._serial:022d}"

    def receive(self, recipient: str, data: bytes, name: str) -> SimInvoice:
        """Put an invoice into ``recipient``'s mailbox (as if a supplier deposited it)."""
        info = read_invoice(data)
        with self.lock:
            inv = SimInvoice(id=self.new_id(), number=info.number, supplier_id=info.supplier_id,
                             supplier_name=info.supplier_name, buyer_id=info.buyer_id,
                             amount=info.total, file=data, name=name,
                             syntax=CHORUS_SYNTAX[info.format], flux=self.flux_number(),
                             account="", recipient=recipient)
            inv.set("DEPOSEE")
            inv.set("MISE_A_DISPOSITION")
            self.invoices[inv.id] = inv
            return inv

    def seed(self, account: str) -> None:
        with self.lock:
            if account in self.seeded or self.seed_received <= 0:
                return
            self.seeded.add(account)
        for n in range(1, self.seed_received + 1):
            number = f"FR-{zlib.crc32(account.encode()) % 10_000:04d}-{n:03d}"
            xml = ubl_xml(DemoInvoice(number, DEMO_SUPPLIER, DEMO_BUYER,
                                      label=f"Fournitures de bureau, lot {n}"))
            self.receive(account, xml, f"{number}.xml")


def service_path(service: str) -> str:
    """``/cpro/<api>/v1/<service>`` as PISTE exposes each Chorus Pro service."""
    api = "transverses" if service.startswith("consulterCR") else "factures"
    return f"/cpro/{api}/v1/{service}"


def _endpoint(sim: ChorusSimulator, service: str, handler: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw or b"")
        except ValueError:
            return refusal(400, BAD_BODY, "Le corps de la requête n'est pas un JSON valide")
        bad = check_body(service, body)
        if bad is not None:
            return bad
        sim.advance()
        return handler(request.state.account, body)

    return endpoint

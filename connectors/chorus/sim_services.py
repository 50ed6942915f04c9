"""The simulated Chorus Pro services, one handler per published service.

Each handler gets the technical account's login and a body already checked
against the service's published fields (``sim_contract.check_body``) and answers as
Chorus Pro does: ``codeRetour`` 0 with the service's fields, 20000 (HTTP 200) for a
search that finds nothing, or an HTTP 400 refusal naming the field at fault.
"""

from __future__ import annotations

import base64
import binascii
import io
import time
import zipfile
from collections.abc import Callable
from datetime import date
from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse

from connectors.chorus.sim_contract import (
    BAD_VALUE,
    DOWNLOAD_FORMATS,
    NO_RESULT,
    NOT_ALLOWED,
    UNKNOWN,
    int_field,
    ok,
    page_of,
    refusal,
)
from connectors.chorus.sim_state import SimFlux, SimInvoice, now
from schemas.invoice import CHORUS_SYNTAX, InvoiceError, InvoiceFormat, read_invoice

RECIPIENT_STATUSES = frozenset({
    "MISE_A_DISPOSITION_COMPTABLE", "SERVICE_FAIT", "MANDATEE", "COMPTABILISEE",
    "MISE_EN_PAIEMENT", "REJETEE", "SUSPENDUE", "A_RECYCLER", "PRISE_EN_COMPTE_DESTINATAIRE"})
Handler = Callable[[str, dict[str, Any]], Response]


class ChorusServices:
    """Handlers of the Chorus Pro services, mixed into ``ChorusSimulator``."""

    lock: Any
    invoices: dict[int, SimInvoice]
    fluxes: dict[str, SimFlux]
    deposits: Any
    status_updates: Any
    flux_number: Callable[[], str]
    new_id: Callable[[], int]
    scenario: Callable[[str], str]
    seed: Callable[[str], None]

    def services(self) -> dict[str, Handler]:
        return {"deposer/flux": self._deposit, "consulterCRDetaille": self._report_detailed,
                "consulterCR": self._report, "rechercher/fournisseur": self._search_issued,
                "rechercher/recipiendaire": self._search_received,
                "consulter/historique": self._history, "telecharger/groupe": self._download,
                "traiter/recue": self._update_received}

    # ------------------------------------------------------------ supplier side

    def _deposit(self, account: str, body: dict) -> Response:
        syntax, name = body.get("syntaxeFlux"), body.get("nomFichier")
        if not isinstance(syntax, str) or syntax not in CHORUS_SYNTAX.values():
            return refusal(400, BAD_VALUE, f"syntaxeFlux inconnue : {syntax!r}")
        if not isinstance(body.get("avecSignature", False), bool):
            return refusal(400, BAD_VALUE, "avecSignature doit être un booléen")
        try:
            data = base64.b64decode(str(body.get("fichierFlux") or ""), validate=True)
        except binascii.Error:
            return refusal(400, BAD_VALUE, "fichierFlux n'est pas encodé en base64")
        if not data or not isinstance(name, str) or not name:
            return refusal(400, BAD_VALUE, "fichierFlux et nomFichier sont obligatoires")
        flux = SimFlux(numero=self.flux_number(), account=account, name=name, syntax=syntax,
                       state="IN_RECU", created=time.monotonic())
        with self.lock:
            self.fluxes[flux.numero] = flux
            self._integrate(flux, data)
        return ok(numeroFluxDepot=flux.numero, dateDepot=date.today().isoformat(),
                  syntaxeFlux=syntax)

    def _integrate(self, flux: SimFlux, data: bytes) -> None:
        """What Chorus Pro will make of the flow: its invoice, or the reasons it rejects it."""
        try:
            info = read_invoice(data)
        except InvoiceError as exc:
            self.deposits.add(f"{flux.account}/{flux.name}")
            flux.final_state, flux.errors = "IN_REJETE", [_dp_error("", str(exc))]
            return
        self.deposits.add(f"{info.supplier_id}/{info.number}")
        expected = CHORUS_SYNTAX[InvoiceFormat(info.format)]
        if flux.syntax != expected:
            flux.final_state = "IN_REJETE"
            flux.errors = [_dp_error(info.number, f"syntaxe {flux.syntax} déclarée, fichier "
                                     f"{info.format.value}", info.supplier_id, info.buyer_id)]
        elif any(i.account and i.number == info.number and i.supplier_id == info.supplier_id
                 for i in self.invoices.values()):
            flux.final_state = "IN_REJETE"
            flux.errors = [_dp_error(info.number, f"Doublon : la facture {info.number} du "
                                     f"fournisseur {info.supplier_id} existe déjà",
                                     info.supplier_id, info.buyer_id)]
        else:
            inv = SimInvoice(id=self.new_id(), number=info.number, supplier_id=info.supplier_id,
                             supplier_name=info.supplier_name, buyer_id=info.buyer_id,
                             amount=info.total, file=data, name=flux.name, syntax=flux.syntax,
                             flux=flux.numero, account=flux.account,
                             scenario=self.scenario(info.number))
            self.invoices[inv.id] = inv
            flux.invoice_id = inv.id

    def _flux(self, account: str, body: dict) -> SimFlux | Response:
        numero = body.get("numeroFluxDepot")
        if not isinstance(numero, str) or not numero:
            return refusal(400, BAD_VALUE, "numeroFluxDepot est obligatoire")
        flux = self.fluxes.get(numero)
        if flux is None or flux.account != account:
            return refusal(400, UNKNOWN, f"Flux {numero} inconnu pour ce compte")
        return flux

    def _report_detailed(self, account: str, body: dict) -> Response:
        flux = self._flux(account, body)
        if isinstance(flux, Response):
            return flux
        rejected = flux.state == "IN_REJETE"
        return ok(numeroFluxDepot=flux.numero, dateDepotFlux=flux.deposited_at,
                  dateHeureEtatCourantFlux=flux.changed_at, etatCourantDepotFlux=flux.state,
                  nomFichier=flux.name, listeErreurDP=flux.errors if rejected else [],
                  listeErreurTechnique=[])

    def _report(self, account: str, body: dict) -> Response:
        flux = self._flux(account, body)
        if isinstance(flux, Response):
            return flux
        return ok(numeroFluxDepot=flux.numero, dateDepotFlux=flux.deposited_at,
                  dateHeureEtatCourantFlux=flux.changed_at, etatCourantFlux=flux.state,
                  nomFichierFlux=flux.name)

    def _search_issued(self, account: str, body: dict) -> Response:
        with self.lock:
            rows = [i for i in self.invoices.values() if i.account == account and i.history
                    and _matches(i, body)]
        if not rows:
            return _no_result()
        chunk, info = page_of(rows, body, "rechercher/fournisseur")
        return ok(listeFactures=[_issued_row(i) for i in chunk], parametresRetour=info)

    def _visible(self, account: str, body: dict) -> SimInvoice | Response:
        invoice_id = int_field(body, "idFacture")
        if isinstance(invoice_id, Response):
            return invoice_id
        inv = self.invoices.get(invoice_id)
        if inv is None or not inv.history or account not in (inv.account, inv.recipient):
            return refusal(400, UNKNOWN, f"Facture {invoice_id} inconnue pour ce compte")
        return inv

    def _history(self, account: str, body: dict) -> Response:
        inv = self._visible(account, body)
        if isinstance(inv, Response):
            return inv
        events = [{"histoStatutId": inv.id * 100 + n, "histoStatutCode": s,
                   "histoStatutDatePassage": at, "histoStatutCommentaire": c}
                  for n, (s, at, c) in enumerate(inv.history, 1)]
        events.reverse()  # Chorus Pro lists the newest status first
        return ok(idFacture=inv.id, numeroFacture=inv.number, statutCourantCode=inv.status,
                  historiquesDesStatuts={
                      "histoStatut": events, "nbResultatsParPageHistoStatut": len(events),
                      "pageCouranteHistoStatut": 1, "pagesHistoStatut": 1,
                      "totalHistoStatut": len(events)})

    # ------------------------------------------------------------ recipient side

    def _search_received(self, account: str, body: dict) -> Response:
        self.seed(account)
        with self.lock:
            rows = [i for i in self.invoices.values() if i.recipient == account
                    and _matches(i, body)]
        if not rows:
            return _no_result()
        chunk, info = page_of(rows, body, "rechercher/recipiendaire")
        return ok(**info, listeFactures=[_received_row(i) for i in chunk])

    def _download(self, account: str, body: dict) -> Response:
        wanted, fmt = body.get("listeFacture"), body.get("format")
        if fmt not in DOWNLOAD_FORMATS:
            return refusal(400, BAD_VALUE, f"format {fmt!r} : XML, PDF ou ZIP attendu")
        if not isinstance(wanted, list) or not wanted or not all(
                isinstance(w, dict) and set(w) == {"idFacture"} for w in wanted):
            return refusal(400, BAD_VALUE, "listeFacture : une liste de {idFacture} attendue")
        found: list[SimInvoice] = []
        for item in wanted:
            inv = self._visible(account, item)
            if isinstance(inv, Response):
                return inv
            found.append(inv)
        if fmt == "PDF" and not all(i.file.startswith(b"%PDF") for i in found):
            return refusal(400, NOT_ALLOWED, "Pas de rendu PDF d'une facture XML ici")
        for inv in found:
            inv.downloaded = True
        content = found[0].file if len(found) == 1 and fmt != "ZIP" else _zip(found)
        return ok(fichierResultat=base64.b64encode(content).decode())

    def _update_received(self, account: str, body: dict) -> Response:
        inv = self._visible(account, body)
        if isinstance(inv, Response):
            return inv
        status, reason = body.get("nouveauStatut"), body.get("motif", "")
        if inv.recipient != account:
            return refusal(400, UNKNOWN, f"Facture {inv.id} : pas une facture reçue")
        if status not in RECIPIENT_STATUSES:
            return refusal(400, BAD_VALUE, f"nouveauStatut {status!r} non autorisé")
        if not isinstance(reason, str) or not isinstance(body.get("numeroDPMandat", ""), str):
            return refusal(400, BAD_VALUE, "motif et numeroDPMandat sont des textes")
        if inv.status in ("REJETEE", "MISE_EN_PAIEMENT"):
            return refusal(400, NOT_ALLOWED, f"La facture est au statut final {inv.status}")
        if status in ("REJETEE", "SUSPENDUE") and not reason:
            return refusal(400, BAD_VALUE, "Le motif est obligatoire pour ce statut")
        self.status_updates.add(f"{inv.id}/{status}")
        with self.lock:
            inv.set(str(status), reason)
        return ok(idFacture=inv.id, numeroFacture=inv.number, dateTraitement=now(),
                  nouveauStatut=status)


def _no_result() -> JSONResponse:
    code, libelle = NO_RESULT
    return JSONResponse({"codeRetour": code, "libelle": libelle})


def _dp_error(number: str, message: str, supplier: str = "", buyer: str = "") -> dict:
    return {"numeroDP": number, "libelleErreurDP": message, "identifiantFournisseur": supplier,
            "identifiantDestinataire": buyer}


def _matches(inv: SimInvoice, body: dict) -> bool:
    """The published criteria the simulator knows how to apply."""
    statuses = body.get("statutCourant")
    if isinstance(statuses, str):
        statuses = [statuses]
    deposited = inv.history[0][1][:10] if inv.history else ""
    downloaded = body.get("factureTelechargeeParDestinataire")
    return ((body.get("numeroFacture") in (None, inv.number))
            and (body.get("numeroFluxDepot") in (None, inv.flux))
            and (not statuses or inv.status in statuses)
            and deposited >= str(body.get("periodeDateDepotDu") or "")
            and deposited <= str(body.get("periodeDateDepotAu") or "9999")
            and (downloaded is None or downloaded == inv.downloaded))


def _common_row(inv: SimInvoice) -> dict[str, Any]:
    return {"numeroFacture": inv.number, "typeDemandePaiement": "FACTURE",
            "typeFacture": "FACTURE", "statut": inv.status, "dateDepot": inv.history[0][1][:10],
            "dateHeureEtatCourant": inv.history[-1][1], "codeFournisseur": inv.supplier_id,
            "typeIdentifiantFournisseur": "SIRET", "designationFournisseur": inv.supplier_name,
            "codeDestinataire": inv.buyer_id, "montantTTC": float(inv.amount or 0),
            "devise": "EUR"}


def _issued_row(inv: SimInvoice) -> dict[str, Any]:
    return {"identifiantFactureCPP": inv.id, **_common_row(inv), "numeroFluxDepot": inv.flux,
            "commentaireEtatCourant": inv.history[-1][2]}


def _received_row(inv: SimInvoice) -> dict[str, Any]:
    return {"idFacture": inv.id, **_common_row(inv),
            "factureTelechargeeParDestinataire": inv.downloaded}


def _zip(invoices: list[SimInvoice]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for inv in invoices:
            archive.writestr(inv.name, inv.file)
    return buffer.getvalue()

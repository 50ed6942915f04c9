"""What the Chorus Pro client returns, read from the API's published answers.

Field names are Chorus Pro's (see ``connectors/README.md``): a deposit answers
``numeroFluxDepot``; ``consulterCRDetaille`` answers ``etatCourantDepotFlux`` and
the reject reasons (``listeErreurDP``, ``listeErreurTechnique``);
``rechercher/fournisseur`` rows carry ``identifiantFactureCPP``,
``rechercher/recipiendaire`` rows ``idFacture``; ``consulter/historique`` answers
``statutCourantCode`` and ``historiquesDesStatuts.histoStatut``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

# Flow states of consulterCRDetaille (etatCourantDepotFlux).
FLUX_INTEGRATED = frozenset({"IN_INTEGRE", "IN_INTEGRE_PARTIEL"})
FLUX_REJECTED = frozenset({"IN_REJETE", "IN_INCIDENTE"})

# The invoice life-cycle as Chorus Pro reports it (statut / statutCourantCode).
REFUSED_STATUSES = frozenset({"REJETEE", "SUSPENDUE", "A_RECYCLER"})
PAID_STATUS = "MISE_EN_PAIEMENT"
LIFECYCLE = ("DEPOSEE", "EN_COURS_ACHEMINEMENT", "MISE_A_DISPOSITION",
             "PRISE_EN_COMPTE_DESTINATAIRE", "SERVICE_FAIT", "MANDATEE",
             "MISE_A_DISPOSITION_COMPTABLE", "COMPTABILISEE", "MISE_EN_PAIEMENT")


class DepositReceipt(BaseModel):
    """Answer of ``deposer/flux`` (or of the search that found the invoice already there)."""

    numero_flux: str
    date_depot: str = ""
    syntax: str = ""
    created: bool = True
    invoice_id: int | None = None


class FluxReport(BaseModel):
    """Answer of ``consulterCRDetaille``: integration state of a deposited flow."""

    numero_flux: str
    state: str  # etatCourantDepotFlux: IN_RECU, IN_INTEGRE, IN_REJETE, ...
    errors: list[str] = Field(default_factory=list)
    raw: dict[str, Any] = Field(default_factory=dict)

    @property
    def integrated(self) -> bool:
        return self.state in FLUX_INTEGRATED

    @property
    def rejected(self) -> bool:
        return self.state in FLUX_REJECTED


class StatusEvent(BaseModel):
    status: str
    at: str = ""
    comment: str = ""


class InvoiceHistory(BaseModel):
    """Answer of ``consulter/historique``: current status and its history, oldest first."""

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


def flux_report(numero_flux: str, answer: dict[str, Any]) -> FluxReport:
    """Read a ``consulterCRDetaille`` answer (an error list may come as one object)."""
    errors = [str(e.get("libelleErreurDP") or e) for e in _rows(answer.get("listeErreurDP"))]
    errors += [str(e.get("libelleErreur") or e) for e in _rows(answer.get("listeErreurTechnique"))]
    return FluxReport(numero_flux=numero_flux, state=str(answer.get("etatCourantDepotFlux", "")),
                      errors=errors, raw=answer)


def issued_row(row: dict[str, Any]) -> InvoiceSummary:
    """A ``rechercher/fournisseur`` row."""
    return InvoiceSummary(
        invoice_id=int(row["identifiantFactureCPP"]), number=str(row.get("numeroFacture", "")),
        status=str(row.get("statut") or ""), deposited_at=str(row.get("dateDepot") or ""),
        supplier_id=str(row.get("codeFournisseur") or ""),
        supplier_name=str(row.get("designationFournisseur") or ""),
        recipient_id=str(row.get("codeDestinataire") or ""),
        amount=str(row.get("montantTTC") or ""), numero_flux=str(row.get("numeroFluxDepot") or ""))


def received_row(row: dict[str, Any]) -> InvoiceSummary:
    """A ``rechercher/recipiendaire`` row."""
    return InvoiceSummary(
        invoice_id=int(row["idFacture"]), number=str(row.get("numeroFacture", "")),
        status=str(row.get("statut") or ""), deposited_at=str(row.get("dateDepot") or ""),
        supplier_id=str(row.get("codeFournisseur") or ""),
        supplier_name=str(row.get("designationFournisseur") or ""),
        recipient_id=str(row.get("codeDestinataire") or ""),
        amount=str(row.get("montantTTC") or ""))


def history(invoice_id: int, answer: dict[str, Any]) -> InvoiceHistory:
    """Read a ``consulter/historique`` answer; Chorus Pro lists the newest status first."""
    rows = _rows((answer.get("historiquesDesStatuts") or {}).get("histoStatut"))
    rows = sorted(rows, key=lambda r: (str(r.get("histoStatutDatePassage") or ""),
                                       int(r.get("histoStatutId") or 0)))
    events = [StatusEvent(status=str(r.get("histoStatutCode") or ""),
                          at=str(r.get("histoStatutDatePassage") or ""),
                          comment=str(r.get("histoStatutCommentaire") or "")) for r in rows]
    return InvoiceHistory(invoice_id=int(answer.get("idFacture") or invoice_id),
                          number=str(answer.get("numeroFacture") or ""),
                          status=str(answer.get("statutCourantCode") or ""), events=events,
                          raw=answer)


def _rows(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    return [v for v in value or [] if isinstance(v, dict)]

"""Readers of the XML kinds: ACTES, PES, SEDA, invoices, ENSAP envelopes.

Each reader fills the report tolerantly: the schema verdict goes to ``valid`` and
``messages``, and the key fields are read from the file whatever that verdict (an
acquit that breaks a pattern of its schema still says what it acknowledges).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lxml import etree

from bus.audit.inspect.report import Report
from connectors.ensap.envelope import schema_errors as ensap_errors
from connectors.s2low.actes.common import NS as ACTES_NS
from connectors.s2low.actes.common import schema_errors as actes_errors
from connectors.s2low.actes.parse import parse_message
from connectors.sae.seda import SEDA_VERSIONS
from connectors.sae.seda import schema as seda_schema
from schemas.invoice import (
    CII_ROOT,
    NS,
    PIVOT_ROOT,
    UBL_ROOTS,
    InvoiceError,
    read_invoice,
    schema_for,
)
from schemas.pes import schema as pes_schema
from schemas.xmlschemas import xsd_errors

MAX_MESSAGES = 20
SEDA_NS = "fr:gouv:culture:archivesdefrance:seda:v"
PES_KINDS = {"PES_Aller": ("pes.aller", "PES V2 PES_Aller (DGFiP)", "aller"),
             "PES_ACQUIT": ("pes.acquit", "PES V2 PES_ACQUIT (DGFiP)", "acquit"),
             "PES_Retour": ("pes.retour", "PES V2 PES_Retour (DGFiP)", "retour"),
             "PES_ACQUIT_RETOUR": ("pes.acquit_retour", "PES V2 PES_ACQUIT_RETOUR (DGFiP)",
                                   None)}
Reader = Callable[[Report, bytes, etree._Element], None]


def read_xml(report: Report, data: bytes, root: etree._Element) -> None:
    """Identify the XML kind of ``root`` and read it into ``report``."""
    qname = etree.QName(root)
    ns, name = qname.namespace or "", qname.localname
    reader = _reader(ns, name, root.tag)
    if reader is None:
        report.kind, report.standard = "xml", f"XML ({name})"
        report.fields = {"root": root.tag}
        return
    reader(report, data, root)


def _reader(ns: str, name: str, tag: str) -> Reader | None:
    if ns == ACTES_NS:
        return _actes
    if name in PES_KINDS and (not ns or "minefi.gouv.fr" in ns):
        return _pes
    if ns.startswith(SEDA_NS) and ns[len(SEDA_NS):] in SEDA_VERSIONS:
        return _seda
    if tag in (CII_ROOT, PIVOT_ROOT, *UBL_ROOTS):
        return _invoice
    if name == "envoi-BP-Generique" and not ns:
        return _ensap
    if name == "CPPStatut" and not ns:
        return _chorus_statut
    return None


def _schema_verdict(report: Report, errors: list[Any]) -> None:
    report.valid = not errors
    report.messages += [str(e) for e in errors[:MAX_MESSAGES]]
    if len(errors) > MAX_MESSAGES:
        report.note(f"... and {len(errors) - MAX_MESSAGES} more schema violations")


# --- ACTES ------------------------------------------------------------------------------


def _actes(report: Report, data: bytes, root: etree._Element) -> None:
    name = etree.QName(root).localname
    report.kind, report.standard = f"actes.{name}", f"ACTES v1.1 {name} (Intérieur)"
    _schema_verdict(report, actes_errors(data))
    try:
        message = parse_message(data, validate=False)
    except ValueError as exc:
        report.note(f"fields not read: {exc}")
        report.fields = {"message": name}
        return
    report.fields = {"message": name} | message.model_dump(mode="json", exclude={"kind"})
    if "id_acte" in report.fields:
        report.fields["official_id"] = report.fields["id_acte"]


# --- PES --------------------------------------------------------------------------------


def _v(el: etree._Element | None, path: str) -> str:
    found = el.find(path) if el is not None else None
    return found.get("V", "") if found is not None else ""


def _pes(report: Report, data: bytes, root: etree._Element) -> None:
    kind, standard, schema_name = PES_KINDS[etree.QName(root).localname]
    report.kind, report.standard = kind, standard
    if schema_name is not None:
        _schema_verdict(report, xsd_errors(pes_schema(schema_name), root))
    else:
        report.note("no schema bundled for this PES message: not validated")
    head = root.find("EnTetePES")
    report.fields = {
        "file_name": _v(root, "Enveloppe/Parametres/NomFic"),
        "file_type": _v(root, "Enveloppe/Parametres/TypFic"),
        "issued": _v(head, "DteStr"), "poste": _v(head, "IdPost"),
        "collectivity": _v(head, "IdColl"),
        "code_col": _v(head, "CodCol") or _v(head, "CodColl"),
        "code_bud": _v(head, "CodBud"), "label": _v(head, "LibelleColBud")}
    if kind == "pes.acquit":
        report.fields |= _acquit_fields(root)
    elif kind == "pes.aller":
        report.fields["bordereaux"] = [
            {"Id": b.get("Id", ""), "IdBord": _v(b, "BlocBordereau/IdBord"),
             "Exer": _v(b, "BlocBordereau/Exer")} for b in root.iter("Bordereau")]
    elif kind == "pes.acquit_retour":
        report.fields["elements"] = [{c.tag: c.get("V", "") for c in e}
                                     for e in root.iter("ElementACQUIT_RETOUR")]


def _acquit_fields(root: etree._Element) -> dict[str, Any]:
    elements = []
    for element in root.iter("ElementACQUIT"):
        item: dict[str, Any] = {c.tag: c.get("V", "") for c in element if c.tag != "Erreur"}
        errors = [{"code": _v(e, "NumAnoAck"), "text": _v(e, "LibelleAnoAck")}
                  for e in element.findall("Erreur")]
        if errors:
            item["errors"] = errors
        elements.append(item)
    states = [e.get("EtatAck", "") for e in elements]
    return {"EtatAck": states[0] if len(set(states)) == 1 else states,
            "accepted": bool(states) and all(s == "1" for s in states),
            "errors": [err for e in elements for err in e.get("errors", [])],
            "elements": elements}


# --- SEDA -------------------------------------------------------------------------------


def _seda(report: Report, data: bytes, root: etree._Element) -> None:
    ns = etree.QName(root).namespace or ""
    version, name = ns[len(SEDA_NS):], etree.QName(root).localname
    report.kind, report.standard = f"seda.{name}", f"SEDA {version} {name}"
    _schema_verdict(report, xsd_errors(seda_schema(version), root))

    def text(el: etree._Element, path: str) -> str:
        found = el.find(path.replace("s:", f"{{{ns}}}"))
        return (found.text or "").strip() if found is not None else ""

    report.fields = {"version": version, "message_id": text(root, "s:MessageIdentifier"),
                     "date": text(root, "s:Date"), "comment": text(root, "s:Comment"),
                     "archival_agency": text(root, "s:ArchivalAgency/s:Identifier"),
                     "transferring_agency": text(root, "s:TransferringAgency/s:Identifier")}
    if name == "ArchiveTransferReply":
        report.fields |= {"ReplyCode": text(root, "s:ReplyCode"),
                          "request_id": text(root, "s:MessageRequestIdentifier"),
                          "grant_date": text(root, "s:GrantDate")}
        report.fields |= _archival_ids(root, ns)
    elif name == "Acknowledgement":
        report.fields["received_id"] = text(root, "s:MessageReceivedIdentifier")
    elif name == "ArchiveTransfer":
        report.fields["units"] = sum(1 for _ in root.iter(f"{{{ns}}}ArchiveUnit"))


def _archival_ids(root: etree._Element, ns: str) -> dict[str, Any]:
    """The identifiers the archive gave: As@lae writes ArchivalAgencyArchiveUnitIdentifier,
    Vitam writes SystemId, in each unit's Content."""
    units: dict[str, str] = {}
    style = None
    for unit in root.iter(f"{{{ns}}}ArchiveUnit"):
        for tag, name in (("ArchivalAgencyArchiveUnitIdentifier", "asalae"),
                          ("SystemId", "vitam")):
            found = unit.find(f"{{{ns}}}Content/{{{ns}}}{tag}")
            if found is not None and (found.text or "").strip():
                units[unit.get("id", "")] = found.text.strip()
                style = style or name
                break
    return {"archival_id": next(iter(units.values()), None), "unit_ids": units,
            "reply_style": style}


# --- invoices, ENSAP ----------------------------------------------------------------------

_INVOICE_PATHS = {  # number, issue date, total, currency: read whatever the schema says
    "cii": ("rsm:ExchangedDocument/ram:ID",
            "rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString",
            "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/"
            "ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:GrandTotalAmount",
            "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/"
            "ram:InvoiceCurrencyCode"),
    "ubl": ("cbc:ID", "cbc:IssueDate", "cac:LegalMonetaryTotal/cbc:PayableAmount",
            "cbc:DocumentCurrencyCode"),
    "pivot": tuple(f"CPPFactures/CPPFacturePivotUnitaire/DonneesFacture/{p}"
                   for p in ("Id", "DateEmissionFacture", "Montants/MontantTTC", "Devise")),
}
_INVOICE_NAMES = {"cii": "UN/CEFACT CII invoice", "ubl": "UBL 2.1 invoice",
                  "pivot": "Chorus Pro PIVOT invoice (CPPFacturePivot)"}


def invoice_fields(root: etree._Element) -> dict[str, Any]:
    """Number, date, total and currency of a CII, UBL or PIVOT invoice (tolerant)."""
    syntax = "cii" if root.tag == CII_ROOT else "pivot" if root.tag == PIVOT_ROOT else "ubl"
    values = []
    for path in _INVOICE_PATHS[syntax]:
        found = root.find(path, NS)
        values.append((found.text or "").strip() if found is not None else "")
    return dict(zip(("number", "issue_date", "total", "currency"), values, strict=True))


def _invoice(report: Report, data: bytes, root: etree._Element) -> None:
    syntax = "cii" if root.tag == CII_ROOT else "pivot" if root.tag == PIVOT_ROOT else "ubl"
    report.kind, report.standard = f"invoice.{syntax}", _INVOICE_NAMES[syntax]
    report.fields = invoice_fields(root)
    invoice_verdict(report, data)


def invoice_verdict(report: Report, data: bytes) -> None:
    """The schema verdict of an invoice (XML or Factur-X PDF), and its profile."""
    try:
        info = read_invoice(data)
    except InvoiceError as exc:
        report.valid = False
        report.note(str(exc))
        return
    report.valid = True
    report.fields |= {"profile": info.profile, "supplier_id": info.supplier_id,
                      "supplier_name": info.supplier_name, "buyer_id": info.buyer_id,
                      "buyer_name": info.buyer_name}


def _ensap(report: Report, data: bytes, root: etree._Element) -> None:
    report.kind, report.standard = "ensap.envelope", "ENSAP envoi-BP-Generique (BPG 1.3.2)"
    _schema_verdict(report, ensap_errors(data))
    message = root.find("message")
    report.fields = {child.tag: (child.text or "").strip()
                     for child in (message if message is not None else [])}
    report.fields["documents"] = sum(1 for _ in root.iter("document"))


def _chorus_statut(report: Report, data: bytes, root: etree._Element) -> None:
    report.kind, report.standard = "chorus.statut", "Chorus Pro invoice status (CPPStatut)"
    _schema_verdict(report, xsd_errors(schema_for("statut"), root))
    report.fields = {p.findtext("Code", ""): p.findtext("Valeurparametre", "")
                     for p in root.iter("ParametreIndiv")}

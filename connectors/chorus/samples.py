"""Sample invoices as Chorus Pro carries them: EN 16931 CII and UBL 2.1 documents
(one line, 20 % VAT), for the simulator's received invoices, the demo and tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from xml.sax.saxutils import escape

from schemas.siren import luhn_ok


@dataclass
class Party:
    """A supplier or buyer: SIRET (14 digits), name, VAT number."""

    siret: str
    name: str
    vat: str = ""

    @property
    def siren(self) -> str:
        return self.siret[:9]


@dataclass
class DemoInvoice:
    """One invoice line with 20 % VAT: enough for a valid EN 16931 invoice."""

    number: str
    supplier: Party
    buyer: Party
    label: str = "Prestation de maintenance"
    net: Decimal = Decimal("100.00")
    issued: date | None = None
    buyer_reference: str = "SERVICE-FINANCES"

    @property
    def vat(self) -> Decimal:
        return (self.net * Decimal("0.20")).quantize(Decimal("0.01"))

    @property
    def gross(self) -> Decimal:
        return self.net + self.vat

    @property
    def day(self) -> date:
        return self.issued or date.today()


_CII_NS = ('xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100" '
           'xmlns:ram="urn:un:unece:uncefact:data:standard:'
           'ReusableAggregateBusinessInformationEntity:100" '
           'xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100" '
           'xmlns:qdt="urn:un:unece:uncefact:data:standard:QualifiedDataType:100"')


def _cii_party(tag: str, p: Party) -> str:
    vat = (f"<ram:SpecifiedTaxRegistration><ram:ID schemeID=\"VA\">{escape(p.vat)}</ram:ID>"
           "</ram:SpecifiedTaxRegistration>") if p.vat else ""
    return (f"<ram:{tag}><ram:GlobalID schemeID=\"0009\">{p.siret}</ram:GlobalID>"
            f"<ram:Name>{escape(p.name)}</ram:Name><ram:SpecifiedLegalOrganization>"
            f"<ram:ID schemeID=\"0002\">{p.siren}</ram:ID></ram:SpecifiedLegalOrganization>"
            "<ram:PostalTradeAddress><ram:CountryID>FR</ram:CountryID></ram:PostalTradeAddress>"
            f"{vat}</ram:{tag}>")


def cii_xml(inv: DemoInvoice) -> bytes:
    """An EN 16931 CII invoice (the XML a Factur-X PDF embeds)."""
    tax = ("<ram:TypeCode>VAT</ram:TypeCode><ram:CategoryCode>S</ram:CategoryCode>"
           "<ram:RateApplicablePercent>20.00</ram:RateApplicablePercent>")
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<rsm:CrossIndustryInvoice {_CII_NS}>'
        "<rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter>"
        "<ram:ID>urn:cen.eu:en16931:2017</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>"
        "</rsm:ExchangedDocumentContext>"
        f"<rsm:ExchangedDocument><ram:ID>{escape(inv.number)}</ram:ID>"
        "<ram:TypeCode>380</ram:TypeCode><ram:IssueDateTime>"
        f"<udt:DateTimeString format=\"102\">{inv.day:%Y%m%d}</udt:DateTimeString>"
        "</ram:IssueDateTime></rsm:ExchangedDocument>"
        "<rsm:SupplyChainTradeTransaction><ram:IncludedSupplyChainTradeLineItem>"
        "<ram:AssociatedDocumentLineDocument><ram:LineID>1</ram:LineID>"
        "</ram:AssociatedDocumentLineDocument>"
        f"<ram:SpecifiedTradeProduct><ram:Name>{escape(inv.label)}</ram:Name>"
        "</ram:SpecifiedTradeProduct><ram:SpecifiedLineTradeAgreement>"
        f"<ram:NetPriceProductTradePrice><ram:ChargeAmount>{inv.net}</ram:ChargeAmount>"
        "</ram:NetPriceProductTradePrice></ram:SpecifiedLineTradeAgreement>"
        "<ram:SpecifiedLineTradeDelivery><ram:BilledQuantity unitCode=\"C62\">1"
        "</ram:BilledQuantity></ram:SpecifiedLineTradeDelivery>"
        f"<ram:SpecifiedLineTradeSettlement><ram:ApplicableTradeTax>{tax}"
        "</ram:ApplicableTradeTax><ram:SpecifiedTradeSettlementLineMonetarySummation>"
        f"<ram:LineTotalAmount>{inv.net}</ram:LineTotalAmount>"
        "</ram:SpecifiedTradeSettlementLineMonetarySummation></ram:SpecifiedLineTradeSettlement>"
        "</ram:IncludedSupplyChainTradeLineItem><ram:ApplicableHeaderTradeAgreement>"
        f"<ram:BuyerReference>{escape(inv.buyer_reference)}</ram:BuyerReference>"
        f"{_cii_party('SellerTradeParty', inv.supplier)}{_cii_party('BuyerTradeParty', inv.buyer)}"
        "</ram:ApplicableHeaderTradeAgreement><ram:ApplicableHeaderTradeDelivery/>"
        "<ram:ApplicableHeaderTradeSettlement><ram:InvoiceCurrencyCode>EUR"
        "</ram:InvoiceCurrencyCode><ram:ApplicableTradeTax>"
        f"<ram:CalculatedAmount>{inv.vat}</ram:CalculatedAmount><ram:TypeCode>VAT</ram:TypeCode>"
        f"<ram:BasisAmount>{inv.net}</ram:BasisAmount><ram:CategoryCode>S</ram:CategoryCode>"
        "<ram:RateApplicablePercent>20.00</ram:RateApplicablePercent></ram:ApplicableTradeTax>"
        "<ram:SpecifiedTradeSettlementHeaderMonetarySummation>"
        f"<ram:LineTotalAmount>{inv.net}</ram:LineTotalAmount>"
        f"<ram:TaxBasisTotalAmount>{inv.net}</ram:TaxBasisTotalAmount>"
        f"<ram:TaxTotalAmount currencyID=\"EUR\">{inv.vat}</ram:TaxTotalAmount>"
        f"<ram:GrandTotalAmount>{inv.gross}</ram:GrandTotalAmount>"
        f"<ram:DuePayableAmount>{inv.gross}</ram:DuePayableAmount>"
        "</ram:SpecifiedTradeSettlementHeaderMonetarySummation>"
        "</ram:ApplicableHeaderTradeSettlement></rsm:SupplyChainTradeTransaction>"
        "</rsm:CrossIndustryInvoice>\n")
    return xml.encode()


def _ubl_party(tag: str, p: Party) -> str:
    vat = (f"<cac:PartyTaxScheme><cbc:CompanyID>{escape(p.vat)}</cbc:CompanyID><cac:TaxScheme>"
           "<cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>") if p.vat else ""
    return (f"<cac:{tag}><cac:Party><cac:PartyIdentification><cbc:ID schemeID=\"0009\">"
            f"{p.siret}</cbc:ID></cac:PartyIdentification><cac:PostalAddress><cac:Country>"
            "<cbc:IdentificationCode>FR</cbc:IdentificationCode></cac:Country>"
            f"</cac:PostalAddress>{vat}<cac:PartyLegalEntity><cbc:RegistrationName>"
            f"{escape(p.name)}</cbc:RegistrationName><cbc:CompanyID schemeID=\"0009\">"
            f"{p.siret}</cbc:CompanyID></cac:PartyLegalEntity></cac:Party></cac:{tag}>")


def ubl_xml(inv: DemoInvoice) -> bytes:
    """An EN 16931 UBL 2.1 invoice."""
    eur = 'currencyID="EUR"'
    category = ("<cbc:ID>S</cbc:ID><cbc:Percent>20</cbc:Percent><cac:TaxScheme>"
                "<cbc:ID>VAT</cbc:ID></cac:TaxScheme>")
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" '
        'xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2" '
        'xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">'
        "<cbc:CustomizationID>urn:cen.eu:en16931:2017</cbc:CustomizationID>"
        f"<cbc:ID>{escape(inv.number)}</cbc:ID><cbc:IssueDate>{inv.day.isoformat()}"
        "</cbc:IssueDate><cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>"
        "<cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>"
        f"<cbc:BuyerReference>{escape(inv.buyer_reference)}</cbc:BuyerReference>"
        f"{_ubl_party('AccountingSupplierParty', inv.supplier)}"
        f"{_ubl_party('AccountingCustomerParty', inv.buyer)}"
        f"<cac:TaxTotal><cbc:TaxAmount {eur}>{inv.vat}</cbc:TaxAmount><cac:TaxSubtotal>"
        f"<cbc:TaxableAmount {eur}>{inv.net}</cbc:TaxableAmount>"
        f"<cbc:TaxAmount {eur}>{inv.vat}</cbc:TaxAmount><cac:TaxCategory>{category}"
        "</cac:TaxCategory></cac:TaxSubtotal></cac:TaxTotal><cac:LegalMonetaryTotal>"
        f"<cbc:LineExtensionAmount {eur}>{inv.net}</cbc:LineExtensionAmount>"
        f"<cbc:TaxExclusiveAmount {eur}>{inv.net}</cbc:TaxExclusiveAmount>"
        f"<cbc:TaxInclusiveAmount {eur}>{inv.gross}</cbc:TaxInclusiveAmount>"
        f"<cbc:PayableAmount {eur}>{inv.gross}</cbc:PayableAmount></cac:LegalMonetaryTotal>"
        "<cac:InvoiceLine><cbc:ID>1</cbc:ID><cbc:InvoicedQuantity unitCode=\"C62\">1"
        f"</cbc:InvoicedQuantity><cbc:LineExtensionAmount {eur}>{inv.net}"
        f"</cbc:LineExtensionAmount><cac:Item><cbc:Name>{escape(inv.label)}</cbc:Name>"
        f"<cac:ClassifiedTaxCategory>{category}</cac:ClassifiedTaxCategory></cac:Item>"
        f"<cac:Price><cbc:PriceAmount {eur}>{inv.net}</cbc:PriceAmount></cac:Price>"
        "</cac:InvoiceLine></Invoice>\n")
    return xml.encode()


# A public buyer of the demo invoices (a hospital, as in the Chorus Pro samples).
DEMO_BUYER = Party("26690001700019", "Centre hospitalier de Démo", "FR55266900017")
DEMO_SUPPLIER = Party("38947246500027", "Fournitures Démo SARL", "FR12389472465")


def head_office_siret(siren: str) -> str:
    """The SIRET of establishment 0001 of ``siren``, its last digit the Luhn key."""
    return next(f"{siren}0001{key}" for key in "0123456789" if luhn_ok(f"{siren}0001{key}"))


def tenant_party(siren: str, name: str) -> Party:
    """A demo tenant as a party: its head office (the SIRET its tenant entry lists)."""
    return Party(head_office_siret(siren), name)

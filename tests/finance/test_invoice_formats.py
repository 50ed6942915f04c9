"""Invoice syntaxes: shared samples validate, broken ones are refused naming the element."""

from __future__ import annotations

import pytest

from schemas.invoice import InvoiceError, InvoiceFormat, read_invoice
from tests.conftest import SHARED
from workers.common.demo import minimal_pdf
from workers.finance.demo import (
    DEMO_BUYER,
    DemoInvoice,
    cii_xml,
    facturx_pdf,
    tenant_party,
    ubl_xml,
)

SAMPLES = SHARED / "fixtures"
INVOICE = DemoInvoice("FAC-T-1", tenant_party("216900910", "Ville"), DEMO_BUYER)


@pytest.mark.parametrize(("path", "fmt", "number"), [
    ("einvoice/samples/factur-x-en16931.xml", InvoiceFormat.CII, "F20260023"),
    ("einvoice/samples/ubl-21-en16931.xml", InvoiceFormat.UBL, "F124212"),
    ("chorus/samples/facture-pivot.xml", InvoiceFormat.PIVOT, "FAC19-2512"),
])
def test_shared_samples_validate(path: str, fmt: InvoiceFormat, number: str) -> None:
    info = read_invoice((SAMPLES / path).read_bytes())
    assert (info.format, info.number) == (fmt, number)
    assert info.supplier_id and info.total


def test_generated_facturx_pdf_and_ubl_validate() -> None:
    pdf = read_invoice(facturx_pdf(INVOICE))
    assert (pdf.format, pdf.number, pdf.total, pdf.profile) == (
        InvoiceFormat.FACTURX, "FAC-T-1", "120.00", "en16931")
    assert read_invoice(ubl_xml(INVOICE)).buyer_id == DEMO_BUYER.siret
    assert read_invoice(cii_xml(INVOICE)).chorus_syntax == "IN_DP_E1_CII_16B"


def test_ubl_missing_issue_date_names_the_element() -> None:
    data = ubl_xml(INVOICE)
    start, end = data.index(b"<cbc:IssueDate>"), data.index(b"</cbc:IssueDate>") + 16
    with pytest.raises(InvoiceError, match=r"UBL 2\.1 schema: line 2: .*IssueDate") as caught:
        read_invoice(data[:start] + data[end:])
    assert caught.value.where == "InvoiceTypeCode"  # the element found where IssueDate belongs


def test_pivot_with_an_unknown_element_is_refused() -> None:
    data = (SAMPLES / "chorus/samples/facture-pivot.xml").read_bytes().replace(
        b"<Devise>EUR</Devise>", b"<Monnaie>EUR</Monnaie>")
    with pytest.raises(InvoiceError, match=r"CPPFacturePivot V2_02.*'Monnaie'") as caught:
        read_invoice(data)
    assert caught.value.where == "Monnaie"


def test_pdf_without_embedded_invoice_and_format_mismatch_are_refused() -> None:
    with pytest.raises(InvoiceError, match=r"embeds no factur-x\.xml"):
        read_invoice(minimal_pdf("pas une facture"))
    with pytest.raises(InvoiceError, match="declared format pivot but the file is ubl"):
        read_invoice(ubl_xml(INVOICE), expected=InvoiceFormat.PIVOT)
    with pytest.raises(InvoiceError, match="not well-formed"):
        read_invoice(b"<Invoice>")

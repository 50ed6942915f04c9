"""Producer XML: a DTD or entity is refused as such (never as a schema violation), before
any schema runs, by the one safe parser every producer-XML parse uses; size, depth and
syntax limits name what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.invoice import InvoiceError, read_invoice
from schemas.pes import PesError, read_acquit, validate_aller
from schemas.safexml import DTD_REFUSED, XmlRefused, parse_xml
from workers.finance.demo import DEMO_BUYER, DemoInvoice, cii_xml, tenant_party, ubl_xml

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
PES = (SAMPLES / "pes" / "PESALR2_49101169800000_171227_2045.xml").read_bytes()
ACQUIT = (SAMPLES / "pes" / "ACQUIT_PESALR2_49101169800000_171227_2045.xml").read_bytes()
INVOICE = DemoInvoice("FAC-X-1", tenant_party("216900910", "Ville"), DEMO_BUYER)
DECL = b'<?xml version="1.0" encoding="UTF-8"?>\n'

# DTD/entity declarations an attacker puts before the root element: (name, prolog)
DTDS = [
    ("xxe-file", b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'),
    ("xxe-http", b'<!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:1/x">]>'),
    ("xxe-public", b'<!DOCTYPE r [<!ENTITY x PUBLIC "-//A//B" "http://127.0.0.1:1/x">]>'),
    ("parameter-entity", b'<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:1/p"> %p;]>'),
    ("billion-laughs", b'<!DOCTYPE r [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;">'
                       b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;">]>'),
    ("internal-entity", b'<!DOCTYPE r [<!ENTITY x "injected">]>'),
    ("external-dtd", b'<!DOCTYPE r SYSTEM "http://127.0.0.1:1/evil.dtd">'),
    ("local-dtd", b'<!DOCTYPE r SYSTEM "/etc/passwd">'),
    ("bare-doctype", b"<!DOCTYPE r>"),
    ("attlist-default", b'<!DOCTYPE r [<!ATTLIST r a CDATA "injected">]>'),
]


def _insert(xml: bytes, prolog: bytes) -> bytes:
    """``xml`` with ``prolog`` right after its XML declaration (or at its start)."""
    if xml.startswith(b"<?xml"):
        end = xml.index(b"?>") + 2
        return xml[:end] + b"\n" + prolog + xml[end:]
    return prolog + xml


@pytest.mark.parametrize(("name", "prolog"), DTDS)
def test_parse_xml_refuses_dtd(name: str, prolog: bytes) -> None:
    with pytest.raises(XmlRefused, match=f"^payload: {DTD_REFUSED}$"):
        parse_xml(DECL + prolog + b"<r>&x;</r>" if b"ENTITY x" in prolog
                  else DECL + prolog + b"<r/>", what="payload")


@pytest.mark.parametrize(("name", "prolog"), DTDS)
@pytest.mark.parametrize("syntax", ["ubl", "cii"])
def test_invoice_with_dtd_refused_as_such(name: str, prolog: bytes, syntax: str) -> None:
    xml = (ubl_xml if syntax == "ubl" else cii_xml)(INVOICE)
    with pytest.raises(InvoiceError, match=DTD_REFUSED) as caught:
        read_invoice(_insert(xml, prolog))
    assert "schema" not in str(caught.value)


@pytest.mark.parametrize(("name", "prolog"), DTDS)
def test_pes_aller_with_dtd_refused_as_such(name: str, prolog: bytes) -> None:
    data = _insert(PES, prolog.replace(b"DOCTYPE r", b"DOCTYPE n:PES_Aller"))
    with pytest.raises(PesError, match=DTD_REFUSED) as caught:
        validate_aller(data[i:i + 4096] for i in range(0, len(data), 4096))
    assert "schema" not in str(caught.value)


def test_pes_acquit_with_dtd_refused() -> None:
    with pytest.raises(PesError, match=DTD_REFUSED):
        read_acquit(_insert(ACQUIT, DTDS[0][1]))


def test_utf16_xxe_refused() -> None:
    xml = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY x SYSTEM '
           '"file:///etc/passwd">]><r>&x;</r>').encode("utf-16")
    with pytest.raises(XmlRefused, match=DTD_REFUSED):
        parse_xml(xml)


# other limits: (name, document, message)
LIMITS = [
    ("deep-nesting", b"<r>" + b"<a>" * 150 + b"</a>" * 150 + b"</r>", "nested deeper than 100"),
    ("deeper-than-libxml2", b"<a>" * 300 + b"</a>" * 300, "elements nested too deep"),
    ("deep-huge-tree", b"<a>" * 3000 + b"</a>" * 3000, "elements nested too deep"),
    ("not-closed", b"<r><a></r>", "not well-formed"),
    ("empty", b"", "not well-formed"),
    ("text-not-xml", b"hello", "not well-formed"),
    ("nul-byte", b"<r>\x00</r>", "not well-formed"),
    ("two-roots", b"<r/><r/>", "not well-formed"),
    ("undeclared-entity", b"<r>&x;</r>", "not well-formed"),
]


@pytest.mark.parametrize(("name", "data", "message"), LIMITS)
def test_parse_xml_limits(name: str, data: bytes, message: str) -> None:
    with pytest.raises(XmlRefused, match=message):
        parse_xml(data)


def test_depth_bounded_with_huge_tree_too() -> None:
    with pytest.raises(XmlRefused, match="nested deeper than 100"):
        parse_xml(b"<r>" + b"<a>" * 150 + b"</a>" * 150 + b"</r>", huge_tree=True)


def test_size_limit_checked_before_parsing() -> None:
    with pytest.raises(XmlRefused, match="invoice: 2001 bytes, more than the 2000 bytes"):
        parse_xml(b"<r>" + b" " * 1994 + b"</r>", what="invoice", max_bytes=2000)


def test_normal_xml_parses() -> None:
    assert parse_xml(b"<r><a>1</a></r>").findtext("a") == "1"
    assert read_invoice(ubl_xml(INVOICE)).number == "FAC-X-1"

"""``demat inspect``: what a standard or partner file is, whether it is valid, and what
its signature is worth, for archivists.

``inspect_path`` never raises on a bad file: a file it cannot read is ``kind: unknown``
with the reason in ``messages``. Kinds: ``actes.<Message>``, ``pes.aller``,
``pes.acquit``, ``pes.retour``, ``pes.acquit_retour``, ``seda.<Message>``,
``invoice.facturx``, ``invoice.cii``, ``invoice.ubl``, ``invoice.pivot``,
``ensap.envelope``, ``ensap.package``, ``actes.archive``, ``archive.tar.gz``,
``archive.zip``, ``openpgp.message``, ``demat.state``, ``demat.envelope``,
``demat.manifest``, ``demat.journal``, ``json``, ``pdf``, ``pdf.signed``, ``xml``,
``xml.signed``, ``text``, ``cms.detached``, ``cms``, ``rfc3161``, ``unknown``.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

from asn1crypto import cms, tsp
from cryptography import x509
from lxml import etree

from bus.audit.inspect.containers import (
    GZIP_MAGIC,
    ZIP_MAGIC,
    check_pdf_structure,
    is_openpgp,
    read_archive,
    read_json,
    read_openpgp,
    read_text,
)
from bus.audit.inspect.report import Report, signature_summary
from bus.audit.inspect.xml_kinds import invoice_fields, invoice_verdict, read_xml
from connectors.seal.verify import (
    DS_NS,
    PDF_SIGNED_MARK,
    verify_cms_detached,
    verify_pdf,
    verify_timestamp_token,
    verify_xml,
)
from schemas.xmlschemas import safe_parser

__all__ = ["Report", "inspect_async", "inspect_bytes", "inspect_path", "signature_summary"]

MAX_BYTES = 256 * 1024 * 1024
DETACHED_SUFFIXES = (".p7s", ".sig", ".tsr", ".tst")


def inspect_path(path: Path, *, trust_roots: list[x509.Certificate] | None = None
                 ) -> Report:
    """The report on the file at ``path`` (a detached signature or a time-stamp token is
    checked against the file next to it that has its name without the suffix)."""
    try:
        if path.stat().st_size > MAX_BYTES:
            return _unknown(path, f"larger than {MAX_BYTES // (1024 * 1024)} MiB: not read")
        data = path.read_bytes()
    except OSError as exc:
        return _unknown(path, f"cannot read the file: {exc.strerror or exc}")
    signed = None
    if path.suffix.lower() in DETACHED_SUFFIXES and path.with_suffix("").is_file():
        signed = path.with_suffix("")
    return inspect_bytes(str(path), data, signed_path=signed, trust_roots=trust_roots)


def inspect_bytes(name: str, data: bytes, *, signed_path: Path | None = None,
                  trust_roots: list[x509.Certificate] | None = None) -> Report:
    """The report on ``data`` (named ``name``); never raises on a bad file."""
    return asyncio.run(inspect_async(name, data, signed_path=signed_path,
                                     trust_roots=trust_roots))


async def inspect_async(name: str, data: bytes, *, signed_path: Path | None = None,
                        trust_roots: list[x509.Certificate] | None = None) -> Report:
    """``inspect_bytes`` for callers already in an event loop."""
    report = Report(file=name)
    try:
        await _inspect(report, data, signed_path, trust_roots)
    except Exception as exc:  # a reader's bug must not hide the other files' reports
        report.kind, report.valid = "unknown", None
        report.note(f"could not be read: {type(exc).__name__}: {exc}")
    return report


def _unknown(path: Path, reason: str) -> Report:
    report = Report(file=str(path))
    report.note(reason)
    return report


async def _inspect(report: Report, data: bytes, signed_path: Path | None,
                   roots: list[x509.Certificate] | None) -> None:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not data:
        report.note("empty file")
    elif data[:1024].find(b"%PDF-") != -1:
        await _pdf(report, data, roots)
    elif head.startswith(b"<"):
        _xml(report, data, roots)
    elif head[:1] in (b"{", b"["):
        read_json(report, data)
    elif data.startswith((GZIP_MAGIC, ZIP_MAGIC)):
        await read_archive(report, data, _member)
    elif is_openpgp(data):
        read_openpgp(report, data)
    else:
        await _der(report, data, signed_path, roots)


async def _member(name: str, data: bytes) -> Report:
    """The report on one member of an archive."""
    return await inspect_async(name, data)


def _xml(report: Report, data: bytes, roots: list[x509.Certificate] | None) -> None:
    try:
        root = etree.fromstring(data, safe_parser(huge_tree=True))
    except etree.XMLSyntaxError as exc:
        report.note(f"not well-formed XML: {exc}")
        return
    read_xml(report, data, root)
    if report.kind == "xml":
        report.valid = True
        report.note(f"well-formed XML; no schema is known for <{etree.QName(root).localname}>")
    if root.find(f".//{{{DS_NS}}}Signature") is not None or (
            etree.QName(root).localname == "Signature"
            and etree.QName(root).namespace == DS_NS):
        report.signatures = verify_xml(data, trust_roots=roots, legacy_sha1=True)
        if report.kind == "xml":
            report.kind, report.standard = "xml.signed", "signed XML (XMLDSig/XAdES)"


async def _pdf(report: Report, data: bytes, roots: list[x509.Certificate] | None) -> None:
    from facturx import get_facturx_xml_from_pdf  # lazy: start-up time

    report.kind, report.standard = "pdf", "PDF"
    try:
        xml_name, xml = get_facturx_xml_from_pdf(data, check_xsd=False)
    except Exception as exc:  # pypdf raises many kinds on broken PDFs
        xml_name, xml = None, None
        report.note(f"embedded files not read: {type(exc).__name__}: {exc}")
    if xml:
        report.kind, report.standard = "invoice.facturx", f"Factur-X PDF ({xml_name})"
        try:
            report.fields = invoice_fields(etree.fromstring(xml, safe_parser()))
        except etree.XMLSyntaxError as exc:
            report.note(f"{xml_name}: not well-formed XML: {exc}")
        invoice_verdict(report, data)
    if PDF_SIGNED_MARK in data:
        report.signatures = await verify_pdf(data, trust_roots=roots)
        if report.kind == "pdf":
            report.kind, report.standard = "pdf.signed", "signed PDF (PAdES)"
    if report.kind.startswith("pdf"):
        check_pdf_structure(report, data)


async def _der(report: Report, data: bytes, signed_path: Path | None,
               roots: list[x509.Certificate] | None) -> None:
    content_type, detached = _cms_kind(data)
    if content_type is None:
        if not read_text(report, data):
            report.note("not a PDF, XML, JSON, archive, OpenPGP message, CMS signature, "
                        "RFC 3161 time-stamp token nor text")
        return
    signed = signed_path.read_bytes() if signed_path is not None else None
    report.valid = True
    report.note("DER structure read in full (CMS SignedData)")
    if content_type == "tst_info":
        report.kind, report.standard = "rfc3161", "RFC 3161 time-stamp token"
        report.signatures = [await verify_timestamp_token(data, signed, trust_roots=roots)]
        report.fields = {"stamped_file": str(signed_path) if signed_path else None}
    elif detached:
        report.kind, report.standard = "cms.detached", "detached CMS signature (CAdES/PKCS#7)"
        report.fields = {"signed_file": str(signed_path) if signed_path else None}
        if signed is None:
            report.note("the signed file (this name without its suffix) is not at hand: "
                        "the signature cannot be checked")
        else:
            report.signatures = [await verify_cms_detached(signed, data, trust_roots=roots)]
    else:
        report.kind, report.standard = "cms", "enveloping CMS signature (PKCS#7)"
        report.note("an enveloping CMS signature is identified, not checked")


def _cms_kind(data: bytes) -> tuple[str | None, bool]:
    """The content type a CMS blob or time-stamp response signs, and whether the
    signed content is detached; ``(None, False)`` when it is neither."""
    der = _pem_body(data)
    for load in (_from_response, _from_content_info):
        try:
            signed = load(der)
        except (ValueError, TypeError, KeyError):
            continue
        if signed is not None:
            encap = signed["encap_content_info"]
            return encap["content_type"].native, encap["content"].native is None
    return None, False


def _from_response(der: bytes) -> cms.SignedData | None:
    token = tsp.TimeStampResp.load(der)["time_stamp_token"]
    return token["content"] if token.native is not None else None


def _from_content_info(der: bytes) -> cms.SignedData | None:
    info = cms.ContentInfo.load(der)
    return info["content"] if info["content_type"].native == "signed_data" else None


def _pem_body(data: bytes) -> bytes:
    if data.lstrip().startswith(b"-----BEGIN"):
        body = b"".join(line for line in data.splitlines() if not line.startswith(b"-----"))
        return base64.b64decode(body)
    return data

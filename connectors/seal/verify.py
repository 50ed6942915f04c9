"""Verification of signed inputs: PAdES/PDF signatures, XMLDSig/XAdES, detached CMS.

Each signature gives a ``SignatureCheck``: integrity (the signed bytes are intact and
the signature value matches the certificate), signer, signing time, whether that time
falls within the certificate's validity period, and trust (a chain to a given root;
``None`` when no roots are given). Legacy SHA-1 XML signatures fail unless the caller
passes ``legacy_sha1=True``.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import (
    DigestAlgorithm,
    InvalidInput,
    SignatureConfiguration,
    SignatureMethod,
    XMLVerifier,
)

# pyhanko logs every path it cannot build with a traceback; the verdict says it already
logging.getLogger("pyhanko.sign.validation.generic_cms").setLevel(logging.ERROR)
logging.getLogger("pyhanko_certvalidator").setLevel(logging.ERROR)

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
_NS = {"ds": DS_NS}
PDF_SIGNED_MARK = b"/ByteRange"
XML_SIGNED_MARK = DS_NS.encode()


@dataclass
class SignatureCheck:
    """The verdict on one signature of a file."""

    format: str  # pades, xmldsig, xades, cms
    intact: bool
    signer: str | None = None
    signed_at: str | None = None
    cert_not_before: str | None = None
    cert_not_after: str | None = None
    within_validity: bool | None = None
    trusted: bool | None = None
    algorithm: str | None = None
    reference: str | None = None
    legacy: bool = False
    timestamp: str | None = None  # time asserted by an RFC 3161 signature timestamp
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Intact and signed while the certificate was valid (trust is reported apart)."""
        return self.intact and self.within_validity is not False and self.error is None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


def looks_signed(data: bytes, media_type: str) -> bool:
    """A cheap test: does this file carry an embedded signature worth verifying?"""
    if media_type == "application/pdf":
        return PDF_SIGNED_MARK in data
    if media_type in ("application/xml", "text/xml"):
        return XML_SIGNED_MARK in data and b"Signature" in data
    return False


async def verify_embedded(data: bytes, media_type: str, *,
                          trust_roots: list[x509.Certificate] | None = None,
                          legacy_sha1: bool = False) -> list[SignatureCheck]:
    """Every embedded signature of a PDF or XML file (empty when it carries none)."""
    if not looks_signed(data, media_type):
        return []
    if media_type == "application/pdf":
        return await verify_pdf(data, trust_roots=trust_roots)
    return verify_xml(data, trust_roots=trust_roots, legacy_sha1=legacy_sha1)


# --- PDF ------------------------------------------------------------------------------


async def verify_pdf(data: bytes, *, trust_roots: list[x509.Certificate] | None = None
                     ) -> list[SignatureCheck]:
    """Check every signature of a PDF with pyhanko (no network: no revocation fetching)."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import async_validate_pdf_signature

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        signatures = reader.embedded_signatures
    except Exception as exc:
        return [SignatureCheck("pades", False, error=f"unreadable PDF: {exc}")]
    out = []
    for sig in signatures:
        try:
            status = await async_validate_pdf_signature(sig, _validation_context(trust_roots))
        except Exception as exc:
            out.append(SignatureCheck("pades", False, reference=sig.field_name,
                                      error=f"{type(exc).__name__}: {exc}"))
            continue
        cert = x509.load_der_x509_certificate(status.signing_cert.dump())
        stamp = status.timestamp_validity.timestamp if status.timestamp_validity else None
        signed_at = stamp or status.signer_reported_dt
        check = _with_cert(SignatureCheck(
            "pades", bool(status.intact and status.valid), reference=sig.field_name,
            algorithm=status.md_algorithm,
            trusted=bool(status.trusted) if trust_roots else None,
            timestamp=stamp.isoformat() if stamp else None), cert, signed_at)
        if not status.intact:
            check.error = "the signed bytes were modified after signing"
        elif not status.valid:
            check.error = "the signature value does not match the signer's certificate"
        elif status.coverage is not None and "ENTIRE" not in str(status.coverage):
            check.error = f"signature covers part of the file only ({status.coverage.name})"
        out.append(check)
    return out


def _validation_context(trust_roots: list[x509.Certificate] | None) -> Any:
    from pyhanko_certvalidator import ValidationContext

    roots = [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
             for c in trust_roots or []]
    return ValidationContext(trust_roots=roots, allow_fetching=False,
                             revocation_mode="soft-fail")


# --- XML ------------------------------------------------------------------------------

_SHA1 = {SignatureMethod.RSA_SHA1, SignatureMethod.DSA_SHA1, SignatureMethod.ECDSA_SHA1}


def verify_xml(data: bytes, *, trust_roots: list[x509.Certificate] | None = None,
               legacy_sha1: bool = False) -> list[SignatureCheck]:
    """Check every ``ds:Signature`` of an XML file (enveloped, e.g. one per PES bordereau)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        return [SignatureCheck("xmldsig", False, error=f"not well-formed XML: {exc}")]
    return [_verify_one_xml(root, sig, trust_roots, legacy_sha1)
            for sig in root.iter(f"{{{DS_NS}}}Signature")]


def _verify_one_xml(root: etree._Element, sig: etree._Element,
                    trust_roots: list[x509.Certificate] | None,
                    legacy_sha1: bool) -> SignatureCheck:
    is_xades = any("01903" in (el.tag if isinstance(el.tag, str) else "")
                   for el in sig.iter())
    fmt = "xades" if is_xades else "xmldsig"
    method = sig.find("ds:SignedInfo/ds:SignatureMethod", _NS)
    algorithm = method.get("Algorithm") if method is not None else None
    refs = [r.get("URI") for r in sig.findall("ds:SignedInfo/ds:Reference", _NS)]
    reference = next((u for u in refs if u is not None and not _is_props_ref(sig, u)), None)
    check = SignatureCheck(fmt, False, algorithm=algorithm, reference=reference)
    legacy = _uses_sha1(sig)
    check.legacy = legacy
    if legacy and not legacy_sha1:
        check.error = "legacy SHA-1 signature refused (allow it with the legacy setting)"
        return check
    certs = _embedded_certs(sig)
    if not certs:
        check.error = "no X.509 certificate in ds:KeyInfo"
        return check
    signer = certs[0]
    try:
        XMLVerifier().verify(root, x509_cert=signer, expect_config=_xml_config(
            legacy_sha1, _location(root, sig)), validate_schema=False)
        check.intact = True
    except (InvalidInput, Exception) as exc:
        check.error = f"{type(exc).__name__}: {exc}"
    signing_time = _signing_time(sig)
    _with_cert(check, signer, signing_time)
    if trust_roots:
        check.trusted = chain_trusted(signer, certs[1:], trust_roots)
    return check


def _xml_config(legacy_sha1: bool, location: str) -> SignatureConfiguration:
    if legacy_sha1:
        return SignatureConfiguration(expect_references=True, location=location,
                                      signature_methods=frozenset(SignatureMethod),
                                      digest_algorithms=frozenset(DigestAlgorithm))
    return SignatureConfiguration(expect_references=True, location=location)


def _location(root: etree._Element, sig: etree._Element) -> str:
    """The ElementPath prefix that makes signxml pick ``sig`` (and not the first one)."""
    parent = sig.getparent()
    if parent is None or parent is root:
        return "./"
    element_id = parent.get("Id") or parent.get("ID")
    if element_id and re.fullmatch(r"[\w.:-]+", element_id):
        attr = "Id" if parent.get("Id") else "ID"
        return f".//*[@{attr}='{element_id}']/"
    return ".//"


def _is_props_ref(sig: etree._Element, uri: str) -> bool:
    target = uri.lstrip("#")
    return bool(target) and any(el.get("Id") == target and isinstance(el.tag, str)
                                and el.tag.endswith("SignedProperties") for el in sig.iter())


def _uses_sha1(sig: etree._Element) -> bool:
    algos = [el.get("Algorithm", "") for el in sig.findall("ds:SignedInfo//*[@Algorithm]", _NS)]
    return any(a.endswith(("#rsa-sha1", "#dsa-sha1", "#ecdsa-sha1", "#sha1")) for a in algos)


def _embedded_certs(sig: etree._Element) -> list[x509.Certificate]:
    out = []
    for node in sig.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", _NS):
        try:
            out.append(x509.load_der_x509_certificate(_b64(node.text or "")))
        except ValueError:
            continue
    return out


def _b64(text: str) -> bytes:
    import base64

    return base64.b64decode("".join(text.split()))


def _signing_time(sig: etree._Element) -> datetime | None:
    for el in sig.iter():
        if isinstance(el.tag, str) and el.tag.endswith("}SigningTime") and el.text:
            try:
                value = datetime.fromisoformat(el.text.strip().replace("Z", "+00:00"))
            except ValueError:
                return None
            return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


# --- detached CMS -----------------------------------------------------------------------


async def verify_cms_detached(data: bytes, signature: bytes, *,
                              trust_roots: list[x509.Certificate] | None = None
                              ) -> SignatureCheck:
    """Check a detached CMS signature (DER or PEM) of ``data``."""
    from asn1crypto import cms
    from pyhanko.sign.validation.generic_cms import async_validate_detached_cms

    try:
        if signature.lstrip().startswith(b"-----BEGIN"):
            signature = _b64(b"".join(line for line in signature.splitlines()
                                      if not line.startswith(b"-----")).decode())
        signed_data = cms.ContentInfo.load(signature)["content"]
        status = await async_validate_detached_cms(
            data, signed_data, signer_validation_context=_validation_context(trust_roots))
    except Exception as exc:
        return SignatureCheck("cms", False, error=f"{type(exc).__name__}: {exc}")
    cert = x509.load_der_x509_certificate(status.signing_cert.dump())
    return _with_cert(SignatureCheck(
        "cms", bool(status.intact and status.valid), algorithm=status.md_algorithm,
        trusted=bool(status.trusted) if trust_roots else None), cert,
        status.signer_reported_dt)


# --- shared ---------------------------------------------------------------------------


def _with_cert(check: SignatureCheck, cert: x509.Certificate,
               signed_at: datetime | None) -> SignatureCheck:
    check.signer = cert.subject.rfc4514_string()
    check.cert_not_before = cert.not_valid_before_utc.isoformat()
    check.cert_not_after = cert.not_valid_after_utc.isoformat()
    when = signed_at or datetime.now(UTC)
    check.signed_at = signed_at.isoformat() if signed_at else None
    check.within_validity = cert.not_valid_before_utc <= when <= cert.not_valid_after_utc
    if not check.within_validity and check.error is None:
        check.error = (f"signed at {when.isoformat()} outside the certificate validity "
                       f"{check.cert_not_before} .. {check.cert_not_after}")
    return check


def chain_trusted(cert: x509.Certificate, intermediates: list[x509.Certificate],
                  roots: list[x509.Certificate], depth: int = 5) -> bool:
    """True when ``cert`` chains (by issuer name and signature) to one of ``roots``."""
    current = cert
    pool = [c for c in intermediates if c != cert]
    for _ in range(depth):
        for root in roots:
            if current == root or _issued_by(current, root):
                return True
        parent = next((c for c in pool if _issued_by(current, c)), None)
        if parent is None:
            return False
        pool.remove(parent)
        current = parent
    return False


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, Exception):
        return False
    return True

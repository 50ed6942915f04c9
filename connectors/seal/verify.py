"""Verification of signed inputs: PAdES/PDF signatures, XMLDSig/XAdES, detached CMS,
RFC 3161 time-stamp tokens.

Each signature gives a ``SignatureCheck`` (``connectors.seal.verdict``): intact (the
digests and the signature value hold, whatever the algorithm), signer, signing time,
validity of the embedded chain at that time, findings (SHA-1, claimed time, incomplete
chain...) and trust (a chain to given roots; ``None`` when no roots are given). Legacy
SHA-1 XML signatures are reported intact when they are; their ``ok`` is refused unless
the caller passes ``legacy_sha1=True`` (a policy, apart from intactness).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import DigestAlgorithm, SignatureConfiguration, SignatureMethod, XMLVerifier

from connectors.seal.verdict import (
    IMPRINT_UNCHECKED,
    PARTIAL,
    SHA1_DIGEST,
    SHA1_SIGNATURE,
    TIMESTAMP_INVALID,
    SignatureCheck,
    chain_trusted,
    judge_certificates,
)
from schemas.safexml import XmlRefused, parse_xml

# pyhanko logs every path it cannot build with a traceback; the verdict says it already
logging.getLogger("pyhanko.sign.validation.generic_cms").setLevel(logging.CRITICAL)
logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)

__all__ = ["SignatureCheck", "chain_trusted", "looks_signed", "verify_cms_detached",
           "verify_embedded", "verify_pdf", "verify_timestamp_token", "verify_xml"]

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
_NS = {"ds": DS_NS}
PDF_SIGNED_MARK = b"/ByteRange"
XML_SIGNED_MARK = DS_NS.encode()
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
LEGACY_REFUSED = "legacy SHA-1 signature refused (allow it with the legacy setting)"


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
    """Check every signature and document time-stamp of a PDF with pyhanko (no network:
    no revocation fetching)."""
    from pyhanko.pdf_utils.reader import PdfFileReader  # lazy: start-up time

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        signatures = reader.embedded_signatures
    except Exception as exc:
        return [SignatureCheck("pades", False, error=f"unreadable PDF: {exc}")]
    out = []
    for sig in signatures:
        is_stamp = sig.sig_object_type == "/DocTimeStamp"
        try:
            check = await (_pdf_doc_timestamp(sig, trust_roots) if is_stamp
                           else _pdf_signature(sig, trust_roots))
        except Exception as exc:
            check = SignatureCheck("pades-doc-timestamp" if is_stamp else "pades", False,
                                   reference=sig.field_name,
                                   error=f"{type(exc).__name__}: {exc}")
        out.append(check)
    return out


async def _pdf_signature(sig: Any, trust_roots: list[x509.Certificate] | None
                         ) -> SignatureCheck:
    from pyhanko.sign.validation import async_validate_pdf_signature  # lazy: start-up

    status = await async_validate_pdf_signature(sig, _validation_context(trust_roots))
    check = SignatureCheck("pades", bool(status.intact and status.valid),
                           reference=sig.field_name, algorithm=status.md_algorithm,
                           trusted=bool(status.trusted) if trust_roots else None)
    signed_at, stamped = _stamp_time(check, status)
    judge_certificates(check, _cert(status.signing_cert), _cms_certs(sig.signed_data),
                       signed_at, stamped=stamped)
    if not status.intact:
        check.error = "invalid signature: the signed bytes were modified after signing"
    elif not status.valid:
        check.error = "invalid signature: the signature value does not match the signer"
    elif status.coverage is not None and "ENTIRE" not in str(status.coverage):
        check.find(PARTIAL)
        check.error = f"signature covers part of the file only ({status.coverage.name})"
    return check


async def _pdf_doc_timestamp(sig: Any, trust_roots: list[x509.Certificate] | None
                             ) -> SignatureCheck:
    """A PAdES-LTA document time-stamp, checked as a time-stamp."""
    from pyhanko.sign.validation import async_validate_pdf_timestamp  # lazy: start-up

    status = await async_validate_pdf_timestamp(
        sig, validation_context=_validation_context(trust_roots))
    check = SignatureCheck("pades-doc-timestamp", bool(status.intact and status.valid),
                           reference=sig.field_name, algorithm=status.md_algorithm,
                           trusted=bool(status.trusted) if trust_roots else None,
                           timestamp=status.timestamp.isoformat())
    judge_certificates(check, _cert(status.signing_cert), _cms_certs(sig.signed_data),
                       status.timestamp, stamped=True)
    if not check.intact:
        check.error = "invalid time-stamp: the stamped bytes or its signature do not match"
    return check


def _stamp_time(check: SignatureCheck, status: Any) -> tuple[datetime | None, bool]:
    """The signing time to judge at: the signature time-stamp's when it holds."""
    stamp = getattr(status, "timestamp_validity", None)
    if stamp is not None:
        if stamp.intact and stamp.valid:
            check.timestamp = stamp.timestamp.isoformat()
            return stamp.timestamp, True
        check.find(TIMESTAMP_INVALID)
    return status.signer_reported_dt, False


def _validation_context(trust_roots: list[x509.Certificate] | None,
                        moment: datetime | None = None) -> Any:
    from pyhanko_certvalidator import ValidationContext  # lazy: start-up time

    roots = [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
             for c in trust_roots or []]
    return ValidationContext(trust_roots=roots, allow_fetching=False,
                             revocation_mode="soft-fail", moment=moment)


def _cert(cert: asn1_x509.Certificate) -> x509.Certificate:
    return x509.load_der_x509_certificate(cert.dump())


def _cms_certs(signed_data: cms.SignedData) -> list[x509.Certificate]:
    out = []
    for choice in signed_data["certificates"] or []:
        if choice.name == "certificate":
            out.append(_cert(choice.chosen))
    return out


# --- XML ------------------------------------------------------------------------------


def verify_xml(data: bytes, *, trust_roots: list[x509.Certificate] | None = None,
               legacy_sha1: bool = False) -> list[SignatureCheck]:
    """Check every ``ds:Signature`` of an XML file (enveloped, e.g. one per PES bordereau)."""
    try:
        root = parse_xml(data, what="signed XML", max_bytes=len(data), huge_tree=True)
    except XmlRefused as exc:
        return [SignatureCheck("xmldsig", False, error=str(exc))]
    return [_verify_one_xml(root, sig, trust_roots, legacy_sha1)
            for sig in root.iter(f"{{{DS_NS}}}Signature")]


def _verify_one_xml(root: etree._Element, sig: etree._Element,
                    trust_roots: list[x509.Certificate] | None,
                    legacy_sha1: bool) -> SignatureCheck:
    is_xades = any("01903" in (el.tag if isinstance(el.tag, str) else "")
                   for el in sig.iter())
    method = sig.find("ds:SignedInfo/ds:SignatureMethod", _NS)
    refs = [r.get("URI") for r in sig.findall("ds:SignedInfo/ds:Reference", _NS)]
    check = SignatureCheck(
        "xades" if is_xades else "xmldsig", False,
        algorithm=method.get("Algorithm") if method is not None else None,
        reference=next((u for u in refs if u is not None and not _is_props_ref(sig, u)),
                       None))
    _sha1_findings(check, sig)
    certs = _embedded_certs(sig)
    if not certs:
        check.error = "no X.509 certificate in ds:KeyInfo"
        return check
    signer = certs[0]
    try:  # cryptography only: the certificate's dates are judged apart, at signing time
        XMLVerifier().verify(root, x509_cert=signer, validate_schema=False,
                             expect_config=_xml_config(_location(root, sig), signer))
        check.intact = True
    except Exception as exc:  # signxml raises InvalidDigest, InvalidSignature, lxml errors
        check.error = f"invalid signature: {type(exc).__name__}: {exc}"
    signed_at, stamped = _xades_time(check, sig, trust_roots)
    judge_certificates(check, signer, certs, signed_at, stamped=stamped)
    if trust_roots:
        check.trusted = chain_trusted(signer, certs[1:], trust_roots)
    if check.legacy and not legacy_sha1 and check.error is None:
        check.error = LEGACY_REFUSED
    return check


def _xml_config(location: str, signer: x509.Certificate) -> SignatureConfiguration:
    """Every algorithm accepted (SHA-1 is a finding), the certificate taken as valid."""
    return SignatureConfiguration(expect_references=True, location=location,
                                  signature_methods=frozenset(SignatureMethod),
                                  digest_algorithms=frozenset(DigestAlgorithm),
                                  verification_time=signer.not_valid_before_utc)


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


def _sha1_findings(check: SignatureCheck, sig: etree._Element) -> None:
    info = "ds:SignedInfo/"
    if any(el.get("Algorithm", "").endswith("#sha1")
           for el in sig.findall(f"{info}ds:Reference/ds:DigestMethod", _NS)):
        check.find(SHA1_DIGEST)
    if (check.algorithm or "").endswith("-sha1"):
        check.find(SHA1_SIGNATURE)
    check.legacy = bool(check.findings)


def _embedded_certs(sig: etree._Element) -> list[x509.Certificate]:
    out = []
    for node in sig.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", _NS):
        try:
            out.append(x509.load_der_x509_certificate(_b64(node.text or "")))
        except ValueError:
            continue
    return out


def _b64(text: str) -> bytes:
    return base64.b64decode("".join(text.split()))


def _xades_time(check: SignatureCheck, sig: etree._Element,
                trust_roots: list[x509.Certificate] | None) -> tuple[datetime | None, bool]:
    """The time to judge at: a XAdES-T signature time-stamp's when it holds (it proves
    the signature existed then), else the declared ``SigningTime``."""
    stamp = next((el for el in sig.iter() if isinstance(el.tag, str)
                  and el.tag.endswith("}SignatureTimeStamp")), None)
    encapsulated = next((el for el in stamp.iter() if isinstance(el.tag, str)
                         and el.tag.endswith("}EncapsulatedTimeStamp")), None) \
        if stamp is not None else None
    value = sig.find("ds:SignatureValue", _NS)
    if encapsulated is None or value is None:
        return _signing_time(sig), False
    method = stamp.find("ds:CanonicalizationMethod", _NS)
    algorithm = method.get("Algorithm", C14N) if method is not None else C14N
    stamped = etree.tostring(value, method="c14n", exclusive="exc-c14n" in algorithm,
                             with_comments=algorithm.endswith("#WithComments"))
    try:
        token = _b64(encapsulated.text or "")
    except ValueError:
        token = b""
    result = _run(verify_timestamp_token(token, stamped, trust_roots=trust_roots))
    if not (result.intact and result.valid_at_signing_time) or result.timestamp is None:
        check.find(TIMESTAMP_INVALID)
        return _signing_time(sig), False
    check.timestamp = result.timestamp
    return datetime.fromisoformat(result.timestamp), True


def _run(coro: Any) -> Any:
    """Run ``coro`` to its end from sync code, also when an event loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _signing_time(sig: etree._Element) -> datetime | None:
    for el in sig.iter():
        if isinstance(el.tag, str) and el.tag.endswith("}SigningTime") and el.text:
            try:
                value = datetime.fromisoformat(el.text.strip().replace("Z", "+00:00"))
            except ValueError:
                return None
            return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


# --- detached CMS, time-stamp tokens ----------------------------------------------------


def _der(blob: bytes) -> bytes:
    if blob.lstrip().startswith(b"-----BEGIN"):
        return _b64(b"".join(line for line in blob.splitlines()
                             if not line.startswith(b"-----")).decode())
    return blob


async def verify_cms_detached(data: bytes, signature: bytes, *,
                              trust_roots: list[x509.Certificate] | None = None
                              ) -> SignatureCheck:
    """Check a detached CMS signature (DER or PEM) of ``data``."""
    from pyhanko.sign.validation.generic_cms import async_validate_detached_cms  # lazy

    try:
        signed_data = cms.ContentInfo.load(_der(signature))["content"]
        status = await async_validate_detached_cms(
            data, signed_data, signer_validation_context=_validation_context(trust_roots))
    except Exception as exc:
        return SignatureCheck("cms", False, error=f"{type(exc).__name__}: {exc}")
    check = SignatureCheck("cms", bool(status.intact and status.valid),
                           algorithm=status.md_algorithm,
                           trusted=bool(status.trusted) if trust_roots else None)
    signed_at, stamped = _stamp_time(check, status)
    judge_certificates(check, _cert(status.signing_cert), _cms_certs(signed_data),
                       signed_at, stamped=stamped)
    if not check.intact:
        check.error = "invalid signature: the data or the signature value do not match"
    return check


async def verify_timestamp_token(token: bytes, data: bytes | None = None, *,
                                 trust_roots: list[x509.Certificate] | None = None
                                 ) -> SignatureCheck:
    """Check an RFC 3161 token (a TimeStampResp or a bare token): the TSA's signature over
    the TSTInfo and, when ``data`` is given, its imprint of ``data``."""
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data  # lazy

    try:
        signed_data = _token_signed_data(_der(token))
        info = tsp.TSTInfo.load(signed_data["encap_content_info"]["content"].parsed.dump())
        imprint = info["message_imprint"]["hashed_message"].native

        def expected(algo: str) -> bytes:
            return hashlib.new(algo, data).digest() if data is not None else imprint

        status = await validate_tst_signed_data(signed_data, _validation_context(
            trust_roots), expected)
    except Exception as exc:
        return SignatureCheck("rfc3161", False, error=f"{type(exc).__name__}: {exc}")
    check = SignatureCheck("rfc3161", bool(status["intact"] and status["valid"]),
                           algorithm=status.get("md_algorithm"),
                           timestamp=status["timestamp"].isoformat(),
                           trusted=(status.get("trust_problem_indic") is None
                                    if trust_roots else None))
    if data is None:
        check.find(IMPRINT_UNCHECKED)
    judge_certificates(check, _cert(status["signing_cert"]), _cms_certs(signed_data),
                       status["timestamp"], stamped=True)
    if not check.intact:
        check.error = "invalid time-stamp: the imprint or the TSA signature do not match"
    return check


def _token_signed_data(der: bytes) -> cms.SignedData:
    try:
        resp = tsp.TimeStampResp.load(der)
        token = resp["time_stamp_token"]
        if token.native is not None and resp["status"]["status"].native:
            return token["content"]
    except (ValueError, TypeError, KeyError):
        pass
    info = cms.ContentInfo.load(der)
    return info["content"]

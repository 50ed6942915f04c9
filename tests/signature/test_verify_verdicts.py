"""Signature verdicts on real published files: intact apart from valid at signing time,
SHA-1 a finding, altered files invalid, PAdES-LTA document time-stamps as time-stamps."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
from pathlib import Path
from types import SimpleNamespace

import pytest
import signxml.xades.xades as xades_module
from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from pyhanko.pdf_utils.reader import PdfFileReader
from signxml.xades import XAdESSigner

from connectors.seal.verdict import (
    CHAIN_INCOMPLETE,
    CLAIMED_TIME,
    EXPIRED_SINCE,
    IMPRINT_UNCHECKED,
    SHA1_DIGEST,
    SHA1_SIGNATURE,
    TIMESTAMP_INVALID,
)
from connectors.seal.verify import (
    LEGACY_REFUSED,
    verify_pdf,
    verify_timestamp_token,
    verify_xml,
)
from connectors.tsa.simulator import TsaSimulator
from connectors.tsa.token import build_request

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
PES_SHA1 = SAMPLES / "pes" / "PESALR2_49101169800000_171227_2045.xml"
PES_SHA256 = SAMPLES / "pes" / "SHA256_bordereau.xml"
PDF = SAMPLES / "pdf"


def _altered(data: bytes) -> bytes:
    """The same PES with one amount of the signed bordereau changed."""
    assert data.count(b'<MtBordHT V="75724.75"/>') == 1
    return data.replace(b'<MtBordHT V="75724.75"/>', b'<MtBordHT V="75724.76"/>')


def test_real_sha1_pes_of_2017_is_intact_and_was_valid_with_a_certificate_expired_since(
        ) -> None:
    [check] = verify_xml(PES_SHA1.read_bytes(), legacy_sha1=True)
    assert check.format == "xades" and check.intact and check.ok
    assert check.signed_at == "2017-12-27T14:21:55+00:00"
    assert check.cert_not_after.startswith("2020-06-17")
    assert check.valid_at_signing_time is True and check.within_validity is True
    assert {SHA1_DIGEST, SHA1_SIGNATURE, EXPIRED_SINCE, CLAIMED_TIME,
            CHAIN_INCOMPLETE} <= set(check.findings)
    assert "LOPES_Celine" in check.signer and check.trusted is None


def test_sha1_is_a_finding_not_a_failure_of_intactness() -> None:
    [check] = verify_xml(PES_SHA1.read_bytes())  # default policy: legacy not accepted
    assert check.intact and check.valid_at_signing_time
    assert not check.ok and check.error == LEGACY_REFUSED


@pytest.mark.parametrize("path", [PES_SHA1, PES_SHA256], ids=["sha1", "sha256"])
def test_an_altered_pes_is_an_invalid_signature_not_a_policy_refusal(path: Path) -> None:
    for legacy in (False, True):
        [check] = verify_xml(_altered(path.read_bytes()), legacy_sha1=legacy)
        assert not check.intact and not check.ok
        assert check.error.startswith("invalid signature") and "InvalidDigest" in check.error
        assert check.valid_at_signing_time is True  # the dates were fine: the bytes are not


def test_real_sha256_pes_signed_months_before_its_certificate_expired() -> None:
    [check] = verify_xml(PES_SHA256.read_bytes())
    assert check.intact and check.ok and not check.legacy
    assert check.signed_at == "2018-07-04T15:19:45+00:00"
    assert check.cert_not_after.startswith("2018-11-15")
    assert check.valid_at_signing_time is True
    assert SHA1_DIGEST not in check.findings and EXPIRED_SINCE in check.findings


# --- a certificate whose validity window is in the past (no real file found) ----------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: rsa.RSAPrivateKey, issuer: str, issuer_key: rsa.RSAPrivateKey,
          start: dt.datetime, end: dt.datetime, ca: bool) -> x509.Certificate:
    return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256()))


def _sign_pes_at(when: dt.datetime, monkeypatch: pytest.MonkeyPatch,
                 valid: tuple[dt.datetime, dt.datetime] | None = None) -> bytes:
    """A PES-like XAdES signed at ``when`` by a certificate valid ``valid`` (default
    2016-01-01..2017-01-01) under a CA embedded in the signature."""
    utc = dt.UTC
    start, end = valid or (dt.datetime(2016, 1, 1, tzinfo=utc),
                           dt.datetime(2017, 1, 1, tzinfo=utc))
    ca_key, key = (rsa.generate_private_key(public_exponent=65537, key_size=2048)
                   for _ in range(2))
    ca = _cert("Test CA", ca_key, "Test CA", ca_key, dt.datetime(2015, 1, 1, tzinfo=utc),
               dt.datetime(2035, 1, 1, tzinfo=utc), True)
    signer = _cert("Ordonnateur", key, "Test CA", ca_key, start, end, False)

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> Frozen:  # type: ignore[override]
            return cls.fromtimestamp(when.timestamp(), tz)

    monkeypatch.setattr(xades_module, "datetime",
                        SimpleNamespace(datetime=Frozen, timezone=dt.timezone))
    doc = etree.fromstring(b'<PES_Aller><Bordereau Id="B1"><MtBordHT V="10.00"/>'
                           b'</Bordereau></PES_Aller>')
    signed = XAdESSigner().sign(doc, key=key, cert=[signer, ca])
    return etree.tostring(signed)


def test_signed_while_valid_with_a_certificate_expired_since(
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = _sign_pes_at(dt.datetime(2016, 6, 1, 12, tzinfo=dt.UTC), monkeypatch)
    [check] = verify_xml(data)
    assert check.intact and check.ok and check.valid_at_signing_time is True
    assert check.signed_at.startswith("2016-06-01T12:00:00")
    assert check.chain == ["CN=Ordonnateur", "CN=Test CA"]
    assert EXPIRED_SINCE in check.findings and CHAIN_INCOMPLETE not in check.findings


def test_signed_after_the_certificate_expired_is_intact_but_not_valid_then(
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = _sign_pes_at(dt.datetime(2018, 3, 1, tzinfo=dt.UTC), monkeypatch)
    [check] = verify_xml(data)
    assert check.intact and not check.ok
    assert check.valid_at_signing_time is False and check.within_validity is False
    assert "outside the certificate validity" in check.error


# --- PAdES, PAdES-LTA, RFC 3161 tokens (pyHanko's published test files) ----------------


def test_pades_signatures_with_signature_time_stamps() -> None:
    checks = asyncio.run(verify_pdf((PDF / "minimal-signed-twice-both-created.pdf")
                                    .read_bytes()))
    assert [(c.format, c.intact, c.time_source, c.valid_at_signing_time) for c in checks] \
        == [("pades", True, "timestamp", True)] * 2
    assert checks[0].timestamp == "2021-01-11T18:45:14+00:00"


def test_pades_lta_document_time_stamp_is_checked_as_a_time_stamp() -> None:
    checks = asyncio.run(verify_pdf((PDF / "pades-lta-dss-indirect-arrs-test.pdf")
                                    .read_bytes()))
    assert [c.format for c in checks] == ["pades", "pades-doc-timestamp"]
    signature, stamp = checks
    assert signature.intact and signature.valid_at_signing_time is True
    assert signature.signed_at == "2020-11-01T00:00:00+00:00"
    assert EXPIRED_SINCE in signature.findings  # Alice's certificate ended 2022-01-01
    assert stamp.intact and stamp.time_source == "timestamp"
    assert "Time Stamping Authority" in stamp.signer


def test_a_pades_signature_without_time_stamp_says_its_time_is_claimed() -> None:
    [check] = asyncio.run(verify_pdf((PDF / "pades-with-old-style-signing-cert-attr.pdf")
                                     .read_bytes()))
    assert check.intact and check.time_source == "signing-time"
    assert CLAIMED_TIME in check.findings


def test_an_altered_pades_pdf_is_an_invalid_signature() -> None:
    data = bytearray((PDF / "pades-with-old-style-signing-cert-attr.pdf").read_bytes())
    at = data.index(b"stream") + 10  # a byte of the first content stream, signed
    data[at] ^= 0x01
    [check] = asyncio.run(verify_pdf(bytes(data)))
    assert not check.intact and check.error.startswith("invalid signature")


def _doc_timestamp_token() -> tuple[bytes, bytes]:
    """The RFC 3161 token of the PAdES-LTA sample's document time-stamp, and the bytes it
    stamps (the signed byte ranges of the file)."""
    data = (PDF / "pades-lta-dss-indirect-arrs-test.pdf").read_bytes()
    sig = PdfFileReader(io.BytesIO(data), strict=False).embedded_signatures[1]
    ranges = list(sig.sig_object["/ByteRange"])
    stamped = b"".join(data[start:start + length]
                       for start, length in zip(ranges[::2], ranges[1::2], strict=True))
    return bytes(sig.sig_object["/Contents"]), stamped


def test_rfc3161_token_checked_against_the_stamped_bytes() -> None:
    token, stamped = _doc_timestamp_token()
    assert cms.ContentInfo.load(token)["content_type"].native == "signed_data"
    check = asyncio.run(verify_timestamp_token(token, stamped))
    assert check.format == "rfc3161" and check.intact
    assert check.signed_at == "2020-11-01T00:00:00+00:00"
    alone = asyncio.run(verify_timestamp_token(token))
    assert alone.intact and IMPRINT_UNCHECKED in alone.findings
    other = asyncio.run(verify_timestamp_token(token, stamped + b" "))
    assert not other.intact and other.error.startswith("invalid time-stamp")


# --- XAdES-T: the signature time-stamp's time is the signing time --------------------


XADES = "http://uri.etsi.org/01903/v1.3.2#"
DS = "http://www.w3.org/2000/09/xmldsig#"


def _add_signature_timestamp(signed: bytes, tsa: TsaSimulator) -> bytes:
    """Add a XAdES-T ``SignatureTimeStamp`` (an RFC 3161 token over the canonical
    ``ds:SignatureValue``) to the unsigned properties: the signature stays intact."""
    root = etree.fromstring(signed)
    value = root.find(f".//{{{DS}}}SignatureValue")
    request, _ = build_request(etree.tostring(value, method="c14n"))
    token = tsp.TimeStampResp.load(tsa.respond(request))["time_stamp_token"].dump()
    props = root.find(f".//{{{XADES}}}QualifyingProperties")
    stamp = etree.SubElement(etree.SubElement(etree.SubElement(
        props, f"{{{XADES}}}UnsignedProperties"), f"{{{XADES}}}UnsignedSignatureProperties"),
        f"{{{XADES}}}SignatureTimeStamp")
    etree.SubElement(stamp, f"{{{DS}}}CanonicalizationMethod",
                     Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315")
    etree.SubElement(stamp, f"{{{XADES}}}EncapsulatedTimeStamp").text = \
        base64.b64encode(token).decode()
    return etree.tostring(root)


def test_xades_t_time_stamp_time_is_the_signing_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    now = dt.datetime.now(dt.UTC)
    data = _sign_pes_at(now, monkeypatch, valid=(now - dt.timedelta(days=30),
                                                 now + dt.timedelta(days=30)))
    stamped = _add_signature_timestamp(data, TsaSimulator(tmp_path / "tsa"))
    [check] = verify_xml(stamped)
    assert check.intact and check.ok and check.time_source == "timestamp"
    assert check.timestamp and check.signed_at == check.timestamp
    assert CLAIMED_TIME not in check.findings


def test_xades_t_a_claimed_time_is_not_proof_the_time_stamp_wins(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Claims 2016 (within the certificate's 2016 validity) but was time-stamped today,
    after the certificate expired: not valid at (proven) signing time."""
    data = _sign_pes_at(dt.datetime(2016, 6, 1, tzinfo=dt.UTC), monkeypatch)
    [check] = verify_xml(_add_signature_timestamp(data, TsaSimulator(tmp_path / "tsa")))
    assert check.intact and check.time_source == "timestamp"
    assert check.valid_at_signing_time is False and not check.ok


def test_xades_t_with_a_broken_time_stamp_falls_back_to_the_claimed_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    now = dt.datetime.now(dt.UTC)
    data = _sign_pes_at(now, monkeypatch, valid=(now - dt.timedelta(days=30),
                                                 now + dt.timedelta(days=30)))
    stamped = _add_signature_timestamp(data, TsaSimulator(tmp_path / "tsa"))
    root = etree.fromstring(stamped)
    root.find(f".//{{{XADES}}}EncapsulatedTimeStamp").text = base64.b64encode(
        b"\x30\x03\x02\x01\x00").decode()
    [check] = verify_xml(etree.tostring(root))
    assert check.intact and check.time_source == "signing-time"
    assert {TIMESTAMP_INVALID, CLAIMED_TIME} <= set(check.findings)

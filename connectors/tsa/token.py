"""RFC 3161 time-stamp tokens: requests, and offline verification of responses.

Verification checks what ``openssl ts -verify`` checks: the response status, the
message imprint against the data, the CMS signature over the signed attributes,
the message-digest attribute against the TSTInfo, the ESS signing-certificate
(v2) binding, the signer's critical ``timeStamping`` extended key usage and its
certificate chain to the given trust anchor.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from asn1crypto import algos, cms, core, tsp, x509
from cryptography import x509 as cx509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


class TokenError(ValueError):
    """A time-stamp response that does not prove what it should (the message says why)."""


@dataclass(frozen=True)
class Stamp:
    """What a verified token says."""

    gen_time: datetime
    serial: int
    policy: str
    tsa_cert_pem: bytes


def build_request(data: bytes, *, nonce: int | None = None,
                  cert_req: bool = True) -> tuple[bytes, int]:
    """DER ``TimeStampReq`` over SHA-256 of ``data``, and its nonce."""
    nonce = nonce if nonce is not None else secrets.randbits(63)
    req = tsp.TimeStampReq({
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": "sha256"},
                            "hashed_message": hashlib.sha256(data).digest()},
        "nonce": nonce,
        "cert_req": cert_req,
    })
    return req.dump(), nonce


def parse_response(der: bytes) -> tsp.TimeStampResp:
    """The response, or ``TokenError`` if it is not a granted RFC 3161 response."""
    try:
        answer = _Answer.load(der)
        status = answer["status"]["status"].native
    except (ValueError, TypeError) as exc:
        raise TokenError(f"not an RFC 3161 TimeStampResp: {exc}") from exc
    if status not in ("granted", "granted_with_mods"):
        info = answer["status"]["fail_info"].native
        text = answer["status"]["status_string"].native
        raise TokenError(f"TSA refused the request: {status} {sorted(info or [])} "
                         f"{text or ''}".strip())
    try:
        return tsp.TimeStampResp.load(der)
    except (ValueError, TypeError) as exc:
        raise TokenError(f"not an RFC 3161 TimeStampResp: {exc}") from exc


class _Answer(core.Sequence):
    """TimeStampResp as RFC 3161 defines it: the token is absent from refusals."""

    _fields: ClassVar = [("status", tsp.PKIStatusInfo),
                         ("time_stamp_token", cms.ContentInfo, {"optional": True})]


def tst_info(resp: tsp.TimeStampResp) -> tuple[tsp.TSTInfo, bytes]:
    """The TSTInfo of a response and its DER bytes (what the signature covers)."""
    token = resp["time_stamp_token"]
    if token["content_type"].native != "signed_data":
        raise TokenError("time-stamp token is not CMS SignedData")
    encap = token["content"]["encap_content_info"]
    if encap["content_type"].native != "tst_info":
        raise TokenError("time-stamp token does not hold a TSTInfo")
    raw = encap["content"].contents
    return tsp.TSTInfo.load(raw), raw


def verify_response(der: bytes, data: bytes, ca_pem: bytes, *,
                    nonce: int | None = None) -> Stamp:
    """Check that ``der`` time-stamps ``data`` under the TSA chained to ``ca_pem``."""
    resp = parse_response(der)
    info, raw = tst_info(resp)
    imprint = info["message_imprint"]
    algo = imprint["hash_algorithm"]["algorithm"].native
    if algo not in HASHES:
        raise TokenError(f"unsupported imprint hash {algo}")
    if imprint["hashed_message"].native != hashlib.new(algo, data).digest():
        raise TokenError("message imprint does not match the data (data altered?)")
    if nonce is not None and info["nonce"].native != nonce:
        raise TokenError("nonce differs from the request's")
    signed = resp["time_stamp_token"]["content"]
    signer = signed["signer_infos"][0]
    cert = _signer_cert(signed, signer)
    _check_signature(signer, cert, raw)
    _check_cert(cert, ca_pem, info["gen_time"].native)
    return Stamp(gen_time=info["gen_time"].native, serial=info["serial_number"].native,
                 policy=info["policy"].dotted,
                 tsa_cert_pem=cx509.load_der_x509_certificate(cert.dump()).public_bytes(
                     _pem()))


def _pem():
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.PEM


def _signer_cert(signed: cms.SignedData, signer: cms.SignerInfo) -> x509.Certificate:
    sid = signer["sid"]
    if sid.name != "issuer_and_serial_number":
        raise TokenError("signer identified by key id: not supported")
    issuer, serial = sid.chosen["issuer"], sid.chosen["serial_number"].native
    for choice in signed["certificates"] or []:
        cert = choice.chosen
        if isinstance(cert, x509.Certificate) and cert.serial_number == serial \
                and cert.issuer == issuer:
            return cert
    raise TokenError("the token does not embed its signer's certificate (certReq)")


def _attr(signer: cms.SignerInfo, name: str):
    for attr in signer["signed_attrs"]:
        if attr["type"].native == name:
            return attr["values"][0]
    raise TokenError(f"signed attribute {name} missing")


def _check_signature(signer: cms.SignerInfo, cert: x509.Certificate, raw: bytes) -> None:
    digest_algo = signer["digest_algorithm"]["algorithm"].native
    if digest_algo not in HASHES:
        raise TokenError(f"unsupported digest {digest_algo}")
    if _attr(signer, "content_type").native != "tst_info":
        raise TokenError("content-type attribute is not id-ct-TSTInfo")
    if _attr(signer, "message_digest").native != hashlib.new(digest_algo, raw).digest():
        raise TokenError("message-digest attribute does not match the TSTInfo (token altered)")
    _check_ess(signer, cert)
    attrs = signer["signed_attrs"].dump()
    signed_bytes = b"\x31" + attrs[1:]  # DER of the SET OF, not the [0] IMPLICIT tag
    key = cx509.load_der_x509_certificate(cert.dump()).public_key()
    sig = signer["signature"].native
    algo = HASHES[digest_algo]()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(sig, signed_bytes, padding.PKCS1v15(), algo)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(sig, signed_bytes, ec.ECDSA(algo))
        else:
            raise TokenError(f"unsupported TSA key type {type(key).__name__}")
    except InvalidSignature:
        raise TokenError("TSA signature does not verify (token altered)") from None


def _check_ess(signer: cms.SignerInfo, cert: x509.Certificate) -> None:
    for attr in signer["signed_attrs"]:
        name = attr["type"].native
        if name == "signing_certificate_v2":
            ident = attr["values"][0]["certs"][0]
            algo = ident["hash_algorithm"]["algorithm"].native
            if ident["cert_hash"].native != hashlib.new(algo, cert.dump()).digest():
                raise TokenError("ESS signing-certificate-v2 does not match the signer")
            return
        if name == "signing_certificate":
            ident = attr["values"][0]["certs"][0]
            if ident["cert_hash"].native != hashlib.sha1(cert.dump()).digest():
                raise TokenError("ESS signing-certificate does not match the signer")
            return
    raise TokenError("no ESS signing-certificate attribute (RFC 3161 2.4.2)")


def _check_cert(cert: x509.Certificate, ca_pem: bytes, at: datetime) -> None:
    tsa = cx509.load_der_x509_certificate(cert.dump())
    try:
        eku = tsa.extensions.get_extension_for_class(cx509.ExtendedKeyUsage)
    except cx509.ExtensionNotFound:
        raise TokenError("TSA certificate has no extendedKeyUsage") from None
    if not eku.critical or list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise TokenError("TSA certificate's extendedKeyUsage is not critical timeStamping only")
    if not tsa.not_valid_before_utc <= at <= tsa.not_valid_after_utc:
        raise TokenError("TSA certificate was not valid at the time-stamp's time")
    anchors = cx509.load_pem_x509_certificates(ca_pem)
    for ca in anchors:
        if ca.subject != tsa.issuer:
            continue
        try:
            tsa.verify_directly_issued_by(ca)
            return
        except (ValueError, TypeError, InvalidSignature):
            continue
    raise TokenError("TSA certificate is not issued by the trusted TSA CA")


def digest_algorithm(name: str = "sha256") -> algos.DigestAlgorithm:
    return algos.DigestAlgorithm({"algorithm": name})

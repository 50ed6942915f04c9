"""The verdict on one signature, judged as an archivist needs it.

Two questions apart: is the signature *intact* (the digests and the signature value hold:
nobody changed the signed bytes), and was it *valid at signing time* (the signer's
certificate and the chain of certificates embedded in the file were within their validity
periods at the signing time: a time-stamp's time when there is one, else the signing time
the signer declared). A certificate that expired after signing does not undo a signature.
Legacy algorithms (SHA-1) are findings, not failures. Trust is a third question: without
trust roots it is ``None`` (unknown); revocation is not checked (no network).

Findings (codes): ``sha1-digest``, ``sha1-signature``, ``no-signing-time``,
``signing-time-claimed`` (no time-stamp: the time is the signer's own claim),
``chain-incomplete`` (the chain stops before a self-signed root: the root is not
embedded), ``self-signed``, ``cert-expired-since`` (valid then, expired now),
``partial-coverage``, ``timestamp-invalid``, ``imprint-not-checked``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

SHA1_DIGEST, SHA1_SIGNATURE = "sha1-digest", "sha1-signature"
NO_TIME, CLAIMED_TIME = "no-signing-time", "signing-time-claimed"
CHAIN_INCOMPLETE, SELF_SIGNED, EXPIRED_SINCE = "chain-incomplete", "self-signed", \
    "cert-expired-since"
PARTIAL, TIMESTAMP_INVALID, IMPRINT_UNCHECKED = "partial-coverage", "timestamp-invalid", \
    "imprint-not-checked"


@dataclass
class SignatureCheck:
    """The verdict on one signature (or time-stamp) of a file."""

    format: str  # pades, pades-doc-timestamp, xmldsig, xades, cms, rfc3161
    intact: bool
    signer: str | None = None
    signed_at: str | None = None
    time_source: str | None = None  # timestamp, signing-time (declared), None
    cert_not_before: str | None = None
    cert_not_after: str | None = None
    within_validity: bool | None = None  # the signer's certificate, at signing time
    valid_at_signing_time: bool | None = None  # the whole embedded chain, at signing time
    chain: list[str] = field(default_factory=list)  # subjects, signer first
    trusted: bool | None = None  # None: unknown (no trust roots given)
    algorithm: str | None = None
    reference: str | None = None
    legacy: bool = False  # SHA-1 somewhere in the signature
    timestamp: str | None = None  # time asserted by an RFC 3161 time-stamp
    findings: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Intact and signed while the certificates were valid (trust is reported apart)."""
        return (self.intact and self.within_validity is not False
                and self.valid_at_signing_time is not False and self.error is None)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}

    def find(self, code: str) -> None:
        if code not in self.findings:
            self.findings.append(code)


def judge_certificates(check: SignatureCheck, signer: x509.Certificate,
                       embedded: list[x509.Certificate], signed_at: datetime | None,
                       *, stamped: bool = False) -> SignatureCheck:
    """Fill the signer, the signing time and the chain verdicts of ``check``."""
    check.signer = signer.subject.rfc4514_string()
    check.cert_not_before = signer.not_valid_before_utc.isoformat()
    check.cert_not_after = signer.not_valid_after_utc.isoformat()
    if signed_at is not None and signed_at.tzinfo is None:
        signed_at = signed_at.replace(tzinfo=UTC)
    check.signed_at = signed_at.isoformat() if signed_at else None
    check.time_source = None if signed_at is None else "timestamp" if stamped \
        else "signing-time"
    if signed_at is None:
        check.find(NO_TIME)
    elif not stamped:
        check.find(CLAIMED_TIME)
    chain, complete = build_chain(signer, embedded)
    check.chain = [c.subject.rfc4514_string() for c in chain]
    if len(chain) == 1 and complete:
        check.find(SELF_SIGNED)
    elif not complete:
        check.find(CHAIN_INCOMPLETE)
    when = signed_at or datetime.now(UTC)
    check.within_validity = _valid_at(signer, when)
    check.valid_at_signing_time = (all(_valid_at(c, when) for c in chain)
                                   if signed_at is not None else None)
    if check.within_validity and signer.not_valid_after_utc < datetime.now(UTC):
        check.find(EXPIRED_SINCE)
    if not check.within_validity and check.error is None:
        check.error = (f"signed at {when.isoformat()} outside the certificate validity "
                       f"{check.cert_not_before} .. {check.cert_not_after}")
    elif check.valid_at_signing_time is False and check.error is None:
        bad = next(c for c in chain if not _valid_at(c, when))
        check.error = (f"signed at {when.isoformat()} outside the validity of the chain's "
                       f"certificate {bad.subject.rfc4514_string()} "
                       f"({bad.not_valid_before_utc.isoformat()} .. "
                       f"{bad.not_valid_after_utc.isoformat()})")
    return check


def _valid_at(cert: x509.Certificate, when: datetime) -> bool:
    return cert.not_valid_before_utc <= when <= cert.not_valid_after_utc


def build_chain(cert: x509.Certificate, pool: list[x509.Certificate], depth: int = 8
                ) -> tuple[list[x509.Certificate], bool]:
    """The chain from ``cert`` up through ``pool`` (by issuer name and signature), and
    whether it ends at a self-signed certificate."""
    chain = [cert]
    rest = [c for c in pool if c != cert]
    for _ in range(depth):
        current = chain[-1]
        if _issued_by(current, current):
            return chain, True
        parent = next((c for c in rest if _issued_by(current, c)), None)
        if parent is None:
            return chain, False
        rest.remove(parent)
        chain.append(parent)
    return chain, False


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

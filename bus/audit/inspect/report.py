"""The report ``demat inspect`` gives on one file, and its JSON form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connectors.seal.verdict import SignatureCheck


@dataclass
class Report:
    """What one file is, whether it is valid, its signature and its key fields.

    ``valid``: ``True``/``False`` by the deepest check its kind allows: the official schema
    (XSD) of partner XML, demat-bus's models for its records, every member of an
    archive, a full parse for PDF, DER and OpenPGP structures, well-formedness for XML
    and JSON without a known schema (``messages`` says which); ``None`` when nothing
    could be checked (unknown file, enveloping CMS).
    """

    file: str
    kind: str = "unknown"
    standard: str = ""  # human name of the standard or partner format
    valid: bool | None = None
    messages: list[str] = field(default_factory=list)
    signatures: list[SignatureCheck] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)

    def note(self, message: str) -> None:
        self.messages.append(message)

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "kind": self.kind, "standard": self.standard,
                "valid": self.valid, "messages": self.messages,
                "signature": signature_summary(self.signatures), "fields": self.fields}


def signature_summary(checks: list[SignatureCheck]) -> dict[str, Any]:
    """One verdict for the file: every signature intact, every one valid at its signing
    time; the first signer and time; all findings; each signature in ``details``."""
    if not checks:
        return {"present": False, "intact": None, "signer": None, "signed_at": None,
                "valid_at_signing_time": None, "trusted": None, "findings": [],
                "details": []}
    findings: list[str] = []
    for check in checks:
        findings += [f for f in check.findings if f not in findings]
    times = [c.valid_at_signing_time for c in checks]
    trusts = [c.trusted for c in checks]
    return {
        "present": True,
        "intact": all(c.intact for c in checks),
        "signer": checks[0].signer,
        "signed_at": checks[0].signed_at,
        "valid_at_signing_time": False if False in times else None if None in times
        else True,
        "trusted": False if False in trusts else None if None in trusts else True,
        "findings": findings,
        "details": [_detail(c) for c in checks],
    }


def _detail(check: SignatureCheck) -> dict[str, Any]:
    data = check.as_dict()
    data.pop("ok")
    return data

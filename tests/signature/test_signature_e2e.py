"""Signature through the real bus (Tansu + SeaweedFS + worker processes + simulators)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import httpx
import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from signxml import XMLVerifier

from bus.client import DematClient
from bus.dev.launcher import Services, wait_until
from bus.index import Index
from bus.settings import Settings
from schemas.messages import DocState
from workers.common.demo import minimal_pdf

pytestmark = pytest.mark.stack
SEAL_TENANT, PARAPHEUR_TENANT = "216900910", "214502494"


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


async def _run(settings: Settings, docs: list[tuple[str, Path, dict]], timeout: float = 300):
    async with DematClient(settings) as client:
        receipts = [await client.submit("document", [path], tenant=tenant,
                                        metadata={"title": path.stem, "category": "test"} | meta)
                    for tenant, path, meta in docs]
        return [await client.wait(r.doc_id, timeout) for r in receipts]


def _journal(settings: Settings, doc_id: str, last: str) -> list[dict]:
    index = Index(settings.database)
    assert wait_until(lambda: any(e["type"] == last for e in index.events(doc_id)), 30)
    return index.events(doc_id)


def test_sealed_pdf_and_xml_verify_against_the_demo_ca_after_export(
        settings: Settings, services: Services, demat, tmp_path: Path) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    pdf = _write(tmp_path, "attestation.pdf", minimal_pdf("Attestation 7"))
    xml = _write(tmp_path, "registre.xml", b"<?xml version='1.0'?><registre><e>1</e></registre>")
    pdf_state, xml_state = asyncio.run(_run(settings, [
        (SEAL_TENANT, pdf, {"sign": True}), (SEAL_TENANT, xml, {"sign": True})]))
    assert pdf_state.state == DocState.COMPLETED, pdf_state.error
    assert xml_state.state == DocState.COMPLETED, xml_state.error
    ca_pem = settings.var_dir / "seal-demo" / "DEMO-CA.pem"
    ca = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    assert "DEMO CA - not for production" in ca.subject.rfc4514_string()

    out = tmp_path / "pdf-export"
    assert demat("export", pdf_state.doc_id, "--dir", str(out)).returncode == 0
    signed_pdf = (out / "artefacts" / "sign" / "attestation-signed.pdf").read_bytes()
    sig = PdfFileReader(io.BytesIO(signed_pdf)).embedded_signatures[0]
    root = asn1_x509.Certificate.load(ca.public_bytes(serialization.Encoding.DER))
    status = validate_pdf_signature(sig, ValidationContext(trust_roots=[root],
                                                           allow_fetching=False))
    assert status.intact and status.valid and status.trusted

    out = tmp_path / "xml-export"
    assert demat("export", xml_state.doc_id, "--dir", str(out)).returncode == 0
    signed_xml = (out / "artefacts" / "sign" / "registre-signed.xml").read_bytes()
    verified = XMLVerifier().verify(signed_xml, ca_pem_file=str(ca_pem), expect_references=True)
    assert b"<registre>" in verified[0].signed_data

    events = _journal(settings, pdf_state.doc_id, "completed")
    done = next(e for e in events if e["type"] == "step-done" and e["step"] == "sign")
    facts = done["detail"]["output"]["signatures"][0]
    assert facts["signer"].endswith(f"CN=demat-bus DEMO seal {SEAL_TENANT}")
    assert facts["signed_at"] and len(facts["signature_sha256"]) == 64

    # the sealed PDF submitted again: intake verifies it and records the verdict
    resubmitted = _write(tmp_path, "deja-signe.pdf", signed_pdf)
    [state] = asyncio.run(_run(settings, [(SEAL_TENANT, resubmitted, {})]))
    assert state.state == DocState.COMPLETED, state.error
    [check] = state.record("validate").output["signatures"]
    assert check["intact"] and check["trusted"] and check["ok"] and check["within_validity"]
    tampered = _write(tmp_path, "altere.pdf", signed_pdf.replace(b"Attestation 7",
                                                                 b"Attestation 9"))
    [state] = asyncio.run(_run(settings, [(SEAL_TENANT, tampered, {})]))
    assert state.state == DocState.ERROR and state.error.field == "files[0]"
    assert "does not verify" in state.error.message


def test_iparapheur_signed_and_rejected_through_the_bus(
        settings: Settings, services: Services, tmp_path: Path) -> None:
    signed = _write(tmp_path, "arrete.pdf", minimal_pdf("Arrete 2026-12"))
    refused = _write(tmp_path, "deliberation.pdf", minimal_pdf("Deliberation 2026-12"))
    ok, rejected = asyncio.run(_run(settings, [
        (PARAPHEUR_TENANT, signed, {"sign": True, "signature_subtype": "visa-signature"}),
        (PARAPHEUR_TENANT, refused, {"sign": True, "parapheur_metadata": {
            "sim_reject": "Le montant ne correspond pas au budget voté"}})]))
    assert ok.state == DocState.COMPLETED, ok.error
    out = ok.record("sign").output
    assert [s["action"] for s in out["signers"]] == ["VISA", "SIGNATURE"]
    assert ok.record("sign").polls >= 1  # waited through delay topics, no blocked consumer
    assert ok.record("deposit").status == "done"
    assert {a.kind for a in ok.artefacts if a.step == "sign"} == {"signed", "partner-reply"}

    assert rejected.state == DocState.REJECTED
    assert "montant ne correspond pas" in rejected.error.message
    assert rejected.error.business and rejected.record("deposit").status != "done"
    events = _journal(settings, rejected.doc_id, "rejected")
    assert [e["type"] for e in events][-2:] == ["step-failed", "rejected"]
    assert not any(e["type"] == "error" for e in events)

    url = json.loads((settings.var_dir / "simulators.json").read_text())["iparapheur"]
    counts = httpx.get(f"{url}/_sim/counts").json()
    assert counts["created"][f"demat-{ok.doc_id}"] == 1
    assert counts["created"][f"demat-{rejected.doc_id}"] == 1

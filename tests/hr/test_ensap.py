"""ENSAP: envelopes valid against the reference schema; encrypted lots over HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from datetime import date
from pathlib import Path

import httpx
import pytest

from connectors.ensap.client import EnsapClient
from connectors.ensap.envelope import Emitter, EnsapEntry, build_envelope, schema_errors
from connectors.ensap.simulator import EnsapSimulator
from connectors.errors import BusinessRefusal, TransientError
from connectors.simulator import FailurePlan
from schemas.payslip import nir_key
from tests.conftest import SHARED
from workers.common.demo import minimal_pdf

NIR13 = "1870194035088"
NIR = NIR13 + f"{nir_key(NIR13):02d}"


def _entry(i: int, pdf: bytes) -> EnsapEntry:
    n13 = f"2{85 + i % 10:02d}0{(i % 9) + 1}69123{i:03d}"
    return EnsapEntry(doc_id=f"doc-{i}", matricule=f"M{i:04d}", nir=n13 + f"{nir_key(n13):02d}",
                      birth_name="Éloïse D'Arc-Martin", birth_date=date(1985, 3, 2),
                      employer_siret="21690091000011", period_start=date(2026, 11, 1),
                      net_amount_cents=215032, pdf_sha256=hashlib.sha256(pdf).hexdigest(),
                      pdf_size=len(pdf))


def test_envelope_passes_the_reference_xsdcheck(tmp_path: Path) -> None:
    pdf = minimal_pdf("bulletin")
    xml = build_envelope(Emitter("216900910", code_cft="X1"), "216900910-run-1",
                         [_entry(i, pdf) for i in range(3)])
    assert schema_errors(xml) == []
    path = tmp_path / "envelope.xml"
    path.write_bytes(xml)
    check = subprocess.run([sys.executable, str(SHARED / "tools" / "xsdcheck.py"), "ensap",
                            str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert xml.count(b"<assure>") == 3 and b"<numero_ordre>3</numero_ordre>" in xml


@pytest.fixture(scope="module")
def ensap():
    sim = EnsapSimulator()
    server = sim.serve()
    yield sim, server.base_url
    server.stop()


def test_lot_is_encrypted_checked_and_sent_once(ensap) -> None:
    sim, url = ensap
    pdf = minimal_pdf("Bulletin de paie")
    entries = [_entry(i, pdf) for i in range(2)]

    async def go() -> tuple[dict, dict | None, dict | None]:
        client = EnsapClient(url, Emitter("216900910"))
        xml = build_envelope(client.emitter, "lot-a", entries)
        assert await client.lookup("lot-a") is None
        receipt = await client.deposit("lot-a", xml, [(e.file_name, [pdf]) for e in entries])
        again = await client.lookup("lot-a")
        with pytest.raises(BusinessRefusal, match="poids_fichier"):
            bad = build_envelope(client.emitter, "lot-b", [entries[0]])
            await client.deposit("lot-b", bad, [(entries[0].file_name, [pdf + b"x"])])
        await client.aclose()
        return receipt, again, sim.lots.get("lot-b")

    receipt, again, refused = asyncio.run(go())
    assert receipt["status"] == "accepted" and len(receipt["entries"]) == 2
    assert again == receipt and refused is None
    counts = httpx.get(f"{url}/_sim/counts").json()
    assert counts["lots"]["lot-a"] == 1 and counts["pay_slip_duplicates"] == {}


def test_package_on_the_wire_holds_no_plaintext(ensap) -> None:
    from connectors.ensap.package import build_zip, open_package, seal_package

    sim, _ = ensap
    secret = b"%PDF-1.7 " + NIR.encode() * 50
    zipped, digest, size = build_zip([("a.pdf", [secret])])
    headers, frames = seal_package(sim.cert, zipped, digest, size)
    body = b"".join(frames)
    assert NIR.encode() not in body
    lower = {k.lower(): v for k, v in headers.items()}
    assert open_package(sim.key, lower, body)
    tampered = bytearray(body)
    tampered[10] ^= 1
    with pytest.raises(ValueError, match="decrypt"):
        open_package(sim.key, lower, bytes(tampered))


def test_failures_are_transient() -> None:
    sim = EnsapSimulator(FailurePlan(error_rate=1.0))
    server = sim.serve()

    async def go() -> None:
        client = EnsapClient(server.base_url, Emitter("216900910"))
        with pytest.raises(TransientError):
            await client.lookup("lot-x")
        await client.aclose()

    try:
        asyncio.run(go())
    finally:
        server.stop()

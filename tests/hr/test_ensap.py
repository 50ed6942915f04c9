"""ENSAP: envelopes valid against the reference schema; OpenPGP-encrypted tar.gz lots
over HTTP, decrypted and checked by the simulator."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import tarfile
from datetime import date, datetime
from pathlib import Path

import httpx
import pytest

from connectors.ensap.client import EnsapClient
from connectors.ensap.envelope import (
    Emitter,
    EnsapEntry,
    build_envelope,
    content_errors,
    package_name,
    schema_errors,
)
from connectors.ensap.package import (
    INDEX,
    PackageError,
    build_package,
    load_certificate,
    open_package,
)
from connectors.ensap.simulator import EnsapSimulator
from connectors.errors import BusinessRefusal, TransientError
from connectors.simulator import FailurePlan
from schemas.payslip import nir_key
from tests.conftest import SHARED
from workers.common.demo import minimal_pdf

NIR13 = "1870194035088"
NIR = NIR13 + f"{nir_key(NIR13):02d}"
EMITTER = Emitter("216900910", sre_name="CCAS", sre_code="P0042")


def _entry(i: int, pdf: bytes) -> EnsapEntry:
    n13 = f"2{85 + i % 10:02d}0{(i % 9) + 1}69123{i:03d}"
    return EnsapEntry(doc_id=f"doc-{i}", matricule=f"M{i:04d}", nir=n13 + f"{nir_key(n13):02d}",
                      birth_name="Éloïse D'Arc-Martin", birth_date=date(1985, 3, 2),
                      employer_siret="21690091000011", period_start=date(2026, 11, 1),
                      net_amount_cents=215032, pdf_sha256=hashlib.sha256(pdf).hexdigest(),
                      pdf_size=len(pdf))


def test_envelope_passes_the_reference_xsdcheck(tmp_path: Path) -> None:
    pdf = minimal_pdf("bulletin")
    entries = [_entry(i, pdf) for i in range(3)]
    xml = build_envelope(EMITTER, entries, at=datetime(2026, 12, 2, 14, 30, 5))
    assert schema_errors(xml) == [] and content_errors(xml, [e.file_name for e in entries]) == []
    assert package_name(xml) == "ENVOI-PJ-BPG-43-CCAS-P0042-202611-021226143005"
    path = tmp_path / "envelope.xml"
    path.write_bytes(xml)
    check = subprocess.run([sys.executable, str(SHARED / "tools" / "xsdcheck.py"), "ensap",
                            str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert xml.count(b"<assure>") == 3 and b"<numero_ordre>3</numero_ordre>" in xml


def test_ensap_example_passes_and_broken_content_is_named() -> None:
    example = (SHARED / "fixtures" / "ensap" / "exemple.xml").read_bytes()
    files = ["1870194035088_13000920600010_BPaie_01092021.pdf",
             "1641275074060_13000920601211_BPaie_01092021.pdf"]
    assert schema_errors(example) == [] and content_errors(example, files) == []
    bad = example.replace(b"<sexe>1</sexe>", b"<sexe>3</sexe>", 1).replace(
        b"<date_document>01092021", b"<date_document>02092021", 1)
    errors = content_errors(bad, [*files[:1], "extra.pdf"])
    assert "assure 11158: sexe invalide" in errors
    assert any("premier du mois" in e for e in errors)
    assert "le fichier extra.pdf n'est pas référencé dans le XML" in errors
    assert f"le fichier {files[1]} n'est pas dans le paquet" in errors


def test_emitter_codes_are_checked() -> None:
    with pytest.raises(ValueError, match="9 characters"):
        Emitter("21690091000011", sre_name="CCAS", sre_code="P1")
    with pytest.raises(ValueError, match="nom_emetteur_sre"):
        Emitter("216900910", sre_name="TOO-LONG", sre_code="P1")


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
        client = EnsapClient(url, EMITTER)
        xml = build_envelope(client.emitter, entries)
        assert await client.lookup("lot-a") is None
        receipt = await client.deposit("lot-a", xml, [(e.file_name, [pdf]) for e in entries])
        again = await client.lookup("lot-a")
        with pytest.raises(BusinessRefusal, match="poids_fichier"):
            bad = build_envelope(client.emitter, [entries[0]])
            await client.deposit("lot-b", bad, [(entries[0].file_name, [pdf + b"x"])])
        with pytest.raises(BusinessRefusal, match="n'est pas dans le paquet"):
            await client.deposit("lot-c", xml, [(entries[0].file_name, [pdf])])
        await client.aclose()
        return receipt, again, sim.lots.get("lot-b")

    receipt, again, refused = asyncio.run(go())
    assert receipt["status"] == "accepted" and len(receipt["entries"]) == 2
    assert receipt["entries"][0]["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert again == receipt and refused is None
    counts = httpx.get(f"{url}/_sim/counts").json()
    assert counts["lots"]["lot-a"] == 1 and counts["pay_slip_duplicates"] == {}


def test_package_is_openpgp_around_a_targz_with_index_xml(ensap, tmp_path: Path) -> None:
    sim, _ = ensap
    secret = b"%PDF-1.7 " + NIR.encode() * 50
    entry = _entry(1, secret)
    xml = build_envelope(EMITTER, [entry])
    sealed = build_package(load_certificate(sim.public_key), tmp_path, xml,
                           [(entry.file_name, [secret])], package_name(xml))
    body = sealed.read_bytes()
    assert sealed.name.endswith(".tar.gz.gpg") and NIR.encode() not in body
    assert body[0] & 0x80  # a binary OpenPGP packet, not armour, not a zip
    index, members = open_package(sim.key, sealed, tmp_path)
    assert index == xml and members[entry.file_name].size == len(secret)
    plain = tmp_path / "package.tar.gz"
    with tarfile.open(plain, "r:gz") as tar:
        assert tar.getnames() == [INDEX, entry.file_name]
    tampered = tmp_path / "tampered.gpg"
    tampered.write_bytes(body[:-40] + bytes(b ^ 1 for b in body[-40:]))
    with pytest.raises(PackageError, match="does not decrypt"):
        open_package(sim.key, tampered, tmp_path)
    other = EnsapSimulator()
    with pytest.raises(PackageError, match="does not decrypt"):
        open_package(other.key, sealed, tmp_path)


def test_failures_are_transient() -> None:
    sim = EnsapSimulator(FailurePlan(error_rate=1.0))
    server = sim.serve()

    async def go() -> None:
        client = EnsapClient(server.base_url, EMITTER)
        with pytest.raises(TransientError):
            await client.lookup("lot-x")
        await client.aclose()

    try:
        asyncio.run(go())
    finally:
        server.stop()


def test_options_name_what_is_missing_or_wrong(tmp_path: Path) -> None:
    real = {"url": "https://ensap.example.invalid", "code_emetteur": "216900910"}
    with pytest.raises(ValueError, match="'public_key'"):
        EnsapClient.from_options(real, var_dir=tmp_path)
    key = tmp_path / "ensap.asc"
    key.write_bytes(EnsapSimulator().public_key)
    with pytest.raises(ValueError, match="nom_emetteur_sre, code_emetteur_sre"):
        EnsapClient.from_options(real | {"public_key": str(key)}, var_dir=tmp_path)
    pem = tmp_path / "ensap.pem"
    pem.write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    with pytest.raises(PackageError, match=r"not an X\.509 certificate"):
        EnsapClient.from_options(real | {"certificate": str(pem), "nom_emetteur_sre": "DSR",
                                         "code_emetteur_sre": "P1"}, var_dir=tmp_path)
    client = EnsapClient.from_options(real | {"public_key": str(key), "nom_emetteur_sre": "DSR",
                                              "code_emetteur_sre": "P1"}, var_dir=tmp_path)
    assert client.emitter.sre_name == "DSR"
    asyncio.run(client.aclose())

"""Every real published sample through ``demat inspect --json`` (the command, in a
subprocess), with the verdict an archivist expects of each."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
ROOT = SAMPLES.parents[1]
# file: (kind, schema-valid, signature intact, valid at signing time, key fields)
EXPECTED: dict[str, tuple[str, bool, bool | None, bool | None, dict[str, str]]] = {
    "actes/ar-actes.xml": ("actes.ARActe", False, None, None,
                           {"official_id": "069-123456789-20130601-20130623C-AI"}),
    "actes/034-000000000-20170701-20170721D-AI-1-3_0.xml": ("actes.AnomalieActe", False,
                                                            None, None, {}),
    "actes/034-000000000-20170701-20170725A-AI-2-1_0.xml": (
        "actes.CourrierSimple", True, None, None,
        {"official_id": "034-000000000-20170701-20170725A-AI"}),
    "actes/034-000000000-20170701-20170725A-AI-5-1_0.xml": (
        "actes.DefereTA", True, None, None,
        {"official_id": "034-000000000-20170701-20170725A-AI"}),
    "actes/ANO_EACT--210703385--20170612-2.xml": ("actes.AnomalieEnveloppe", True, None, None,
                                                 {}),
    "pes/ACQUIT_PESALR2_49101169800000_171227_2045.xml": ("pes.acquit", True, None, None,
                                                          {"EtatAck": "1"}),
    "pes/pes_acquit_not_valid.xml": ("pes.acquit", False, None, None, {"EtatAck": "0"}),
    "pes/PESALR2_49101169800000_171227_2045.xml": ("pes.aller", False, True, True, {}),
    "pes/SHA256_bordereau.xml": ("pes.aller", False, True, True, {}),
    "pes/fichier_signe.xml": ("pes.aller", False, True, True, {}),
    "sae/ack_asalae.xml": ("seda.Acknowledgement", True, None, None, {}),
    "sae/atr_asalae_ok.xml": ("seda.ArchiveTransferReply", False, None, None,
                              {"ReplyCode": "000", "archival_id": "AE_2022_15"}),
    "sae/atr_asalae_ko.xml": ("seda.ArchiveTransferReply", True, None, None,
                              {"ReplyCode": "101"}),
    "sae/atr_vitam_ok.xml": ("seda.ArchiveTransferReply", False, None, None,
                             {"ReplyCode": "OK",
                              "archival_id": "aeaqaaaaaafdat3yadroqamc2a77c6yaaaba"}),
    "sae/atr_vitam_ko.xml": ("seda.ArchiveTransferReply", False, None, None,
                             {"ReplyCode": "KO"}),
    "seda/atr-with-seda-2.1.xml": ("seda.ArchiveTransferReply", True, None, None,
                                   {"ReplyCode": "OK"}),
    "invoice/invoice_EN16931.pdf": ("invoice.facturx", True, None, None,
                                    {"number": "F20260023", "total": "104.90"}),
    "pdf/minimal.pdf": ("pdf", True, None, None, {}),
    "pdf/pades-lta-dss-indirect-arrs-test.pdf": ("pdf.signed", True, True, True, {}),
    "pdf/minimal-signed-twice-both-created.pdf": ("pdf.signed", True, True, True, {}),
    "pdf/pades-with-old-style-signing-cert-attr.pdf": ("pdf.signed", True, True, True, {}),
}


def _inspect(*paths: Path) -> list[dict]:
    run = subprocess.run([sys.executable, "-m", "bus.cli", "inspect", "--json",
                          *map(str, paths)], capture_output=True, text=True, cwd=ROOT,
                         timeout=240)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_every_real_sample_gets_the_expected_verdict(tmp_path: Path) -> None:
    altered = tmp_path / "PESALR2-altered.xml"
    original = (SAMPLES / "pes/PESALR2_49101169800000_171227_2045.xml").read_bytes()
    altered.write_bytes(original.replace(b'V="75724.75"', b'V="1.00"', 1))
    assert altered.read_bytes() != original
    reports = _inspect(*(SAMPLES / name for name in EXPECTED), altered)
    for name, report in zip(EXPECTED, reports, strict=False):
        kind, valid, intact, at_signing, fields = EXPECTED[name]
        sig = report["signature"]
        got = (report["kind"], report["valid"], sig["intact"], sig["valid_at_signing_time"])
        assert got == (kind, valid, intact, at_signing), name
        assert fields.items() <= report["fields"].items(), name
    refused = reports[list(EXPECTED).index("pes/pes_acquit_not_valid.xml")]
    assert refused["fields"]["errors"][0]["code"] == "ERREUR_AUTRE"  # the reason is kept
    assert "Erreur de validation XSD" in refused["fields"]["errors"][0]["text"]
    old = reports[list(EXPECTED).index("pes/PESALR2_49101169800000_171227_2045.xml")]
    assert "sha1-digest" in old["signature"]["findings"]  # legacy digest: its own finding
    tampered = reports[-1]
    assert tampered["kind"] == "pes.aller" and tampered["signature"]["intact"] is False

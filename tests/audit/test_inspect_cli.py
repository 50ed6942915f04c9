"""``demat inspect`` as a command: JSON shape, exit codes, detached signatures and tokens
checked against the file next to them."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.reader import PdfFileReader

from bus.audit.inspect import inspect_path
from bus.cli import main
from connectors.seal.keys import demo_ca
from connectors.seal.local import LocalSeal
from workers.common.demo import minimal_pdf

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
REPORT_KEYS = {"file", "kind", "standard", "valid", "messages", "signature", "fields"}
SIGNATURE_KEYS = {"present", "intact", "signer", "signed_at", "valid_at_signing_time",
                  "trusted", "findings", "details"}


def test_json_report_of_several_files(capsys: pytest.CaptureFixture[str]) -> None:
    files = [SAMPLES / "pes/pes_acquit_not_valid.xml", SAMPLES / "pdf/minimal.pdf",
             SAMPLES / "seda/atr-with-seda-2.1.xml"]
    assert main(["inspect", *map(str, files), "--json"]) == 0
    reports = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in reports] == ["pes.acquit", "pdf", "seda.ArchiveTransferReply"]
    for report in reports:
        assert set(report) == REPORT_KEYS and set(report["signature"]) == SIGNATURE_KEYS
    assert reports[0]["valid"] is False and reports[0]["fields"]["EtatAck"] == "0"


def test_human_output_names_the_verdicts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(SAMPLES / "pes/SHA256_bordereau.xml")]) == 0
    text = capsys.readouterr().out
    assert "pes.aller" in text and "intact yes" in text and "cert-expired-since" in text


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(tmp_path / "absent.xml")]) == 2
    assert "not a file" in capsys.readouterr().err
    bad = tmp_path / "roots.pem"
    bad.write_text("not a certificate")
    assert main(["inspect", str(SAMPLES / "pdf/minimal.pdf"), "--trust", str(bad)]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["inspect"])
    assert exc.value.code == 2


def test_an_unknown_file_is_a_report_not_a_failure(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\xff" * 10)
    assert main(["inspect", str(junk), "--json"]) == 0
    [report] = json.loads(capsys.readouterr().out)
    assert report["kind"] == "unknown" and report["messages"]


def test_detached_cms_checked_against_the_file_next_to_it(tmp_path: Path) -> None:
    seal = LocalSeal.from_options({}, var_dir=tmp_path / "var")
    result = asyncio.run(seal.seal("216900910", b"note de service\n", "text/plain"))
    (tmp_path / "note.txt").write_bytes(b"note de service\n")
    (tmp_path / "note.txt.p7s").write_bytes(result.data)
    r = inspect_path(tmp_path / "note.txt.p7s").as_dict()
    assert r["kind"] == "cms.detached" and r["signature"]["intact"] is True
    # the local seal's CMS carries no signingTime attribute: no time, no verdict on it
    assert r["signature"]["valid_at_signing_time"] is None
    assert "no-signing-time" in r["signature"]["findings"]
    (tmp_path / "note.txt").write_bytes(b"note de service modifiee\n")
    altered = inspect_path(tmp_path / "note.txt.p7s").as_dict()
    assert altered["signature"]["intact"] is False
    (tmp_path / "note.txt").unlink()
    alone = inspect_path(tmp_path / "note.txt.p7s").as_dict()
    assert alone["kind"] == "cms.detached" and alone["signature"]["present"] is False
    assert any("not at hand" in m for m in alone["messages"])


def test_rfc3161_token_file(tmp_path: Path) -> None:
    data = (SAMPLES / "pdf/pades-lta-dss-indirect-arrs-test.pdf").read_bytes()
    sig = PdfFileReader(io.BytesIO(data), strict=False).embedded_signatures[1]
    ranges = list(sig.sig_object["/ByteRange"])
    (tmp_path / "stamped.bin").write_bytes(b"".join(
        data[s:s + n] for s, n in zip(ranges[::2], ranges[1::2], strict=True)))
    (tmp_path / "stamped.bin.tst").write_bytes(bytes(sig.sig_object["/Contents"]))
    r = inspect_path(tmp_path / "stamped.bin.tst").as_dict()
    assert r["kind"] == "rfc3161" and r["signature"]["intact"] is True
    assert r["signature"]["signed_at"] == "2020-11-01T00:00:00+00:00"
    assert "imprint-not-checked" not in r["signature"]["findings"]


def test_trust_is_unknown_without_roots_and_judged_with_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    var = tmp_path / "var"
    seal = LocalSeal.from_options({}, var_dir=var)
    signed = asyncio.run(seal.seal("216900910", minimal_pdf("acte"), "application/pdf"))
    pdf = tmp_path / "acte.pdf"
    pdf.write_bytes(signed.data)
    roots = tmp_path / "ca.pem"
    roots.write_bytes(demo_ca(var).cert.public_bytes(serialization.Encoding.PEM))
    assert main(["inspect", str(pdf), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["signature"]["trusted"] is None
    assert main(["inspect", str(pdf), "--json", "--trust", str(roots)]) == 0
    [report] = json.loads(capsys.readouterr().out)
    assert (report["kind"], report["signature"]["intact"], report["signature"]["trusted"]) \
        == ("pdf.signed", True, True)

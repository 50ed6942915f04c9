"""SEDA 2.1/2.2 messages and SIP packaging, checked against the official schemas."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import zipfile
from datetime import date
from pathlib import Path

import pytest

from connectors.sae import archive_side, seda
from connectors.sae.sip import SipError, SipFile, write_sip
from tests.conftest import SHARED

XSDCHECK = SHARED / "tools" / "xsdcheck.py"
SAMPLES = SHARED / "fixtures" / "seda" / "samples"


def _transfer(version: str, objects: list[seda.DataObject], title: str = "Courrier") -> bytes:
    return seda.build_archive_transfer(seda.Transfer(
        version=version, message_id="DEMAT_T1", comment="test",
        archival_agency=seda.Agency("AD069"), transferring_agency=seda.Agency("216900910"),
        originating_agency=seda.Agency("216900910"), archival_agreement="ACCORD",
        archival_profile="PROFIL", service_level="standard",
        access_rule=seda.Rule("AR038", date(2026, 11, 30)),
        appraisal_rule=seda.Rule("P10Y", date(2026, 11, 30), "Destroy"),
        objects=objects,
        units=[seda.Unit(id="u-root", title=title, level="RecordGrp",
                         keywords=[seda.Keyword("paie", "subject")],
                         start_date=date(2026, 11, 1), end_date=date(2026, 11, 30),
                         children=[seda.Unit(
                             id="u-doc", title="Bulletin", document_type="bulletin_paie",
                             access_rule=seda.Rule("AR044", date(2026, 11, 30)),
                             appraisal_rule=seda.Rule("P50Y", None, "Destroy"),
                             objects=[o.id for o in objects])])]))


def _chunks(data: bytes, size: int = 65536):
    return lambda: (data[i:i + size] for i in range(0, len(data), size))


@pytest.mark.parametrize("version", seda.SEDA_VERSIONS)
def test_transfer_and_replies_validate_against_the_official_schemas(
        version: str, tmp_path: Path) -> None:
    obj = seda.DataObject(id="o-1", uri="content/a.pdf", filename="a.pdf", size=3,
                          digest="ab" * 64, algorithm="sha512", mime_type="application/pdf")
    manifest = _transfer(version, [obj])
    ack = archive_side.build_acknowledgement(version, message_id="ACK_1", received_id="DEMAT_T1",
                                     sender="AD069", receiver="216900910")
    accepted = archive_side.build_transfer_reply(manifest, message_id="ATR_1", reply_code="000",
                                         unit_ids={"u-root": "AE_1", "u-doc": "AE_1_0001"})
    refused = archive_side.build_transfer_reply(manifest, message_id="ATR_2", reply_code="300",
                                        comment="refusé")
    paths = []
    for name, data in (("at", manifest), ("ack", ack), ("atr", accepted), ("ref", refused)):
        paths.append(tmp_path / f"{name}.xml")
        paths[-1].write_bytes(data)
    run = subprocess.run([sys.executable, str(XSDCHECK), f"seda-{version}", *map(str, paths)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout
    assert run.stdout.count("VALID") == 4
    reply = seda.parse_transfer_reply(accepted)
    assert reply.accepted and reply.archival_id == "AE_1"
    assert reply.unit_ids["u-doc"] == "AE_1_0001" and reply.request_id == "DEMAT_T1"
    no = seda.parse_transfer_reply(refused)
    assert not no.accepted and no.reply_code == "300" and no.comment == "refusé"
    assert seda.parse_acknowledgement(ack).received_id == "DEMAT_T1"
    summary = archive_side.read_transfer(manifest)
    assert summary.version == version and summary.objects[0].algorithm == "sha512"


def test_reference_samples_parse() -> None:
    ack = seda.parse_acknowledgement((SAMPLES / "Acknowledgement-2.1.xml").read_bytes())
    assert ack.version == "2.1" and ack.message_id == "FRAD000_ACK_14"
    atr = seda.parse_transfer_reply((SAMPLES / "ArchiveTransferReply-2.1-accepted.xml")
                                    .read_bytes())
    assert atr.accepted and atr.archival_id == "AE_2022_15"
    assert archive_side.read_transfer((SAMPLES / "ArchiveTransfer-2.1.xml").read_bytes()).units


def test_invalid_messages_are_refused_with_the_reason() -> None:
    with pytest.raises(seda.SedaError, match="description level 'Dossier'"):
        seda.build_archive_transfer(seda.Transfer(
            version="2.2", message_id="x", archival_agency=seda.Agency("A"),
            transferring_agency=seda.Agency("B"), objects=[],
            units=[seda.Unit(id="u", title="t", level="Dossier")]))
    bad = _transfer("2.1", []).replace(b"<MessageIdentifier>DEMAT_T1</MessageIdentifier>", b"")
    with pytest.raises(seda.SedaError, match=r"line \d+: .*not valid SEDA 2.1"):
        seda.validate(bad)
    with pytest.raises(seda.SedaError, match=r"not in a SEDA 2\.x namespace"):
        seda.validate(b"<ArchiveTransfer xmlns='urn:other'/>")
    with pytest.raises(seda.SedaError, match="expected a ArchiveTransferReply"):
        seda.parse_transfer_reply(_transfer("2.1", []))


@pytest.mark.parametrize(("fmt", "algorithm"), [("zip", "sha256"), ("tar.gz", "sha512")])
def test_sip_streams_files_and_adds_the_validated_manifest(
        fmt: str, algorithm: str, tmp_path: Path) -> None:
    big = bytes(range(256)) * 12_000  # 3 MB, handed over in 64 KB chunks
    files = [SipFile("o-1", "doc/big.bin", len(big), hashlib.sha256(big).hexdigest(),
                     "application/octet-stream", _chunks(big)),
             SipFile("o-2", "doc/journal.json", 2, hashlib.sha256(b"{}").hexdigest(),
                     "application/json", _chunks(b"{}"))]
    package = write_sip(tmp_path / f"sip.{fmt}", files, lambda objs: _transfer("2.2", objs),
                        fmt=fmt, algorithm=algorithm)
    digest = hashlib.new(algorithm, big).hexdigest()
    assert package.objects[0].digest == digest and package.objects[0].uri == "content/doc/big.bin"
    if fmt == "zip":
        with zipfile.ZipFile(package.path) as zf:
            names, body = zf.namelist(), zf.read("content/doc/big.bin")
    else:
        with tarfile.open(package.path) as tf:
            names = tf.getnames()
            body = tf.extractfile("content/doc/big.bin").read()  # type: ignore[union-attr]
    assert names[-1] == "manifest.xml" and body == big
    assert digest in package.manifest.decode()


def test_sip_refuses_content_that_differs_from_its_reference(tmp_path: Path) -> None:
    files = [SipFile("o-1", "a.txt", 5, hashlib.sha256(b"hello").hexdigest(), "text/plain",
                     _chunks(b"HELLO"))]
    with pytest.raises(SipError, match="content differs"):
        write_sip(tmp_path / "sip.zip", files, lambda objs: _transfer("2.1", objs))
    good = [SipFile("o-1", "a.txt", 5, hashlib.sha256(b"hello").hexdigest(), "text/plain",
                    _chunks(b"hello"))]
    with pytest.raises(SipError, match="manifest rejected by local SEDA validation"):
        write_sip(tmp_path / "sip2.zip", good,
                  lambda objs: _transfer("2.1", objs).replace(b"<Size>5</Size>", b"<Size>x</Size>"))

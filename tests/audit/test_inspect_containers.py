"""demat inspect on what an export holds besides partner XML: records, archives, OpenPGP."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pysequoia

from bus.audit.inspect import inspect_bytes
from schemas.envelope import Envelope, FileRef
from schemas.messages import DocumentState
from tests.conftest import SHARED

ACTES = SHARED / "fixtures" / "actes" / "samples"


def _tar_gz(members: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


def _envelope() -> Envelope:
    return Envelope(tenant="214502494", flow="document", files=[FileRef(
        sha256="a" * 64, size=1, media_type="application/pdf", name="a.pdf")])


def test_demat_records_are_checked_against_their_models() -> None:
    env = _envelope()
    good = inspect_bytes("export/envelope.json", env.model_dump_json().encode()).as_dict()
    assert (good["kind"], good["valid"]) == ("demat.envelope", True)
    state = DocumentState(doc_id=env.id, envelope=env).model_dump_json().encode()
    assert inspect_bytes("x/state.json", state).as_dict()["valid"] is True
    broken = json.loads(env.model_dump_json()) | {"tenant": "123"}
    bad = inspect_bytes("envelope.json", json.dumps(broken).encode()).as_dict()
    assert bad["valid"] is False and bad["messages"][0].startswith("tenant")
    receipt = inspect_bytes("deposit-receipt.json", b'{"location": "x"}').as_dict()
    assert (receipt["kind"], receipt["valid"]) == ("json", True)
    torn = inspect_bytes("deposit-receipt.json", b'{"location": ').as_dict()
    assert (torn["kind"], torn["valid"]) == ("json", False)


def test_an_actes_archive_is_valid_when_every_member_is() -> None:
    envelope = (ACTES / "EACT--214502494--20170717-6.xml").read_bytes()
    archive = _tar_gz({"EACT--214502494--20170717-6.xml": envelope})
    r = inspect_bytes("acte.tar.gz", archive).as_dict()
    assert (r["kind"], r["valid"]) == ("actes.archive", True)
    assert r["fields"]["members"][0]["kind"].startswith("actes.")
    broken = _tar_gz({"EACT--214502494--20170717-6.xml": envelope.replace(b"<", b"<x", 3)})
    assert inspect_bytes("acte.tar.gz", broken).as_dict()["valid"] is False
    assert inspect_bytes("acte.tar.gz", archive[:40]).as_dict()["valid"] is False


def test_an_openpgp_package_is_read_to_its_last_packet() -> None:
    key = pysequoia.Tsk.generate("ENSAP test <ensap@example.org>",
                                 profile=pysequoia.Profile.RFC4880)
    message = pysequoia.encrypt(b"index.xml", recipients=[key.extract_certificate()],
                                armor=False)
    r = inspect_bytes("ENVOI-PJ-BPG.tar.gz.gpg", bytes(message)).as_dict()
    assert (r["kind"], r["valid"]) == ("openpgp.message", True)
    assert r["fields"]["packets"][0] == 1 and r["fields"]["recipients"]
    cut = inspect_bytes("p.gpg", bytes(message)[:-10]).as_dict()
    assert (cut["kind"], cut["valid"]) == ("openpgp.message", False)


def test_plain_xml_is_well_formed_only(tmp_path: Path) -> None:
    r = inspect_bytes("registre.xml", b"<registre><e>1</e></registre>").as_dict()
    assert (r["kind"], r["valid"]) == ("xml", True)
    assert "no schema" in r["messages"][0]


def test_plain_text_is_text_and_binary_is_unknown() -> None:
    r = inspect_bytes("note.txt", "Note de service n°4\n".encode()).as_dict()
    assert (r["kind"], r["valid"], r["fields"]["lines"]) == ("text", True, 1)
    assert inspect_bytes("x.bin", b"\x02\x01binary").as_dict()["kind"] == "unknown"

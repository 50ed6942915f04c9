"""Hostile files on the real stack: each refused or rejected with a reason naming the
file, a normal document completing right after; same-named files deposited side by side."""

from __future__ import annotations

import asyncio
import io
import tempfile
import zipfile
from pathlib import Path

import pytest
from pypdf import PdfWriter
from pypdf.generic import DictionaryObject, NameObject, TextStringObject

from bus.client import DematClient
from bus.dev.launcher import Services
from bus.intake import SubmissionError
from bus.objectstore import file_digest
from bus.settings import Settings
from schemas.messages import DocState
from workers.common.demo import minimal_pdf
from workers.finance.demo import DEMO_BUYER, DemoInvoice, tenant_party, ubl_xml

pytestmark = pytest.mark.stack
TENANT = "216900910"
XXE = b'<!DOCTYPE Invoice [<!ENTITY x SYSTEM "file:///etc/passwd">]>'


def _xxe_invoice() -> bytes:
    xml = ubl_xml(DemoInvoice("XXE-1", tenant_party(TENANT, "Ville"), DEMO_BUYER))
    end = xml.index(b"?>") + 2
    return xml[:end] + b"\n" + XXE + xml[end:]


def _js_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer._root_object[NameObject("/OpenAction")] = writer._add_object(DictionaryObject({
        NameObject("/S"): NameObject("/JavaScript"),
        NameObject("/JS"): TextStringObject("app.launchURL('http://x')")}))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# (flow, file name, content, metadata, words of the reason)
HOSTILE = [
    ("invoice", "xxe.xml", _xxe_invoice(), {"title": "F"}, "declares a DTD/entity"),
    ("document", "arrete-js.pdf", _js_pdf(), {"title": "A", "sign": True}, "JavaScript"),
    ("document", "polyglot.pdf", b"PK\x03\x04" + b"\0" * 26 + minimal_pdf("x"),
     {"title": "P"}, "is application/zip"),
]


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_hostile_files_rejected_naming_the_file_then_a_normal_one_completes(
        settings: Settings, services: Services, tmp_path: Path) -> None:
    async def go() -> list:
        async with DematClient(settings) as client:
            ids = [(await client.submit(flow, [_write(tmp_path, name, data)], tenant=TENANT,
                                        metadata=meta)).doc_id
                   for flow, name, data, meta, _ in HOSTILE]
            normal = await client.submit("document", [_write(
                tmp_path, "courrier.pdf", minimal_pdf("Courrier"))], tenant=TENANT,
                metadata={"title": "Courrier", "archive": False})
            return [await client.wait(d, 120) for d in [*ids, normal.doc_id]]

    *hostile, normal = asyncio.run(go())
    for (_, name, _, _, reason), state in zip(HOSTILE, hostile, strict=True):
        assert state is not None and state.state in (DocState.REJECTED, DocState.ERROR), name
        assert reason in state.error.message and name in state.error.message, state.error
    assert normal is not None and normal.state == DocState.COMPLETED, normal


def test_oversized_invoice_refused_before_its_upload(
        settings: Settings, services: Services, tmp_path: Path) -> None:
    path = tmp_path / "grosse-facture.xml"
    with path.open("wb") as fh:
        fh.write(b"<Invoice>" + b" " * (40 * 1024 * 1024) + b"</Invoice>")

    async def go() -> DematClient:
        async with DematClient(settings) as client:
            with pytest.raises(SubmissionError, match=r"files\[0\]: .*at most 33554432"):
                await client.submit("invoice", [path], tenant=TENANT, metadata={"title": "F"})
            return client

    client = asyncio.run(go())
    assert client.runtime.store.stat_file(TENANT, file_digest(path)[0]) is None


def test_same_named_files_are_deposited_side_by_side(
        settings: Settings, services: Services, tmp_path: Path) -> None:
    paths = []
    for i, name in enumerate(["a.pdf", "a.pdf", "A.PDF"]):
        folder = tmp_path / str(i)
        folder.mkdir()
        paths.append(_write(folder, name, minimal_pdf(f"version {i}")))

    async def go():
        async with DematClient(settings) as client:
            receipt = await client.submit("document", paths, tenant=TENANT,
                                          metadata={"title": "Trois", "archive": False})
            return await client.wait(receipt.doc_id, 120)

    state = asyncio.run(go())
    assert state is not None and state.state == DocState.COMPLETED, state
    folder = Path(state.record("deposit").output["location"])
    kept = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert kept["a.pdf"] == paths[0].read_bytes()
    assert kept["a-2.pdf"] == paths[1].read_bytes()
    assert kept["A-3.PDF"] == paths[2].read_bytes()


def _bomb(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("index.csv", "matricule,file\n")
        zf.writestr("bulletin.pdf", b"\0" * (64 * 1024 * 1024))  # 64 MB from about 64 KB
    return path


# (name, CLI arguments with {dir} for the test's folder, words of the refusal)
CLI_HOSTILE = [
    ("zip-bomb", ["submit-batch", "payslip", "{dir}/bomb.zip", "--json"], "ZIP bomb"),
    ("deep-meta-file", ["submit", "document", "{dir}/ok.pdf", "--tenant", TENANT,
                        "--meta-file", "{dir}/deep.json"], "nested deeper than 20"),
    ("deep-meta", ["submit", "document", "{dir}/ok.pdf", "--tenant", TENANT,
                   "--meta", "x=" + "[" * 50_000 + "]" * 50_000], "nested deeper than 20"),
    ("oversized-invoice", ["submit", "invoice", "{dir}/big.xml", "--tenant", TENANT,
                           "--meta", "title=F"], "at most 33554432"),
]


@pytest.mark.parametrize(("name", "args", "reason"), CLI_HOSTILE,
                         ids=[c[0] for c in CLI_HOSTILE])
def test_cli_refuses_cleanly_and_writes_nothing_outside_the_data_directory(
        demat, settings: Settings, tmp_path: Path, name: str, args: list[str],
        reason: str) -> None:
    _bomb(tmp_path / "bomb.zip")
    _write(tmp_path, "ok.pdf", minimal_pdf("ok"))
    _write(tmp_path, "deep.json", b'{"title": "t", "x": ' + b"[" * 50_000 + b"]" * 50_000
           + b"}")
    with (tmp_path / "big.xml").open("wb") as fh:
        fh.truncate(40 * 1024 * 1024)
    before = set(Path(tempfile.gettempdir()).iterdir())
    run = demat(*(a.replace("{dir}", str(tmp_path)) for a in args))
    assert run.returncode != 0
    assert reason in run.stdout + run.stderr, run.stdout + run.stderr
    assert "Traceback" not in run.stderr and "RecursionError" not in run.stderr
    left = {p for p in set(Path(tempfile.gettempdir()).iterdir()) - before
            if p.name.startswith("demat-")}
    assert not left, left
    leftovers = settings.var_dir / "tmp"
    assert not leftovers.exists() or not any(leftovers.iterdir())

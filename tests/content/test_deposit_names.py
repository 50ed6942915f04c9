"""Deposits never lose a file: same names, case variants and the targets' own names are
stored side by side under deterministic names (GED folder, WebDAV, archive SIP)."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.deposit import DepositFile, side_by_side
from connectors.ged.folder import FolderDeposit
from connectors.webdav.client import WebdavDeposit
from connectors.webdav.simulator import WebdavSimulator
from schemas.envelope import Envelope, FileRef, FileRole
from workers.archive.mapping import document_files

TENANT = "216900910"

# (names of one document's files, the names they are stored under)
CASES = [
    (["a.pdf", "a.pdf"], ["a.pdf", "a-2.pdf"]),
    (["a.pdf", "a.pdf", "a.pdf"], ["a.pdf", "a-2.pdf", "a-3.pdf"]),
    (["a.pdf", "A.PDF"], ["a.pdf", "A-2.PDF"]),
    (["a.pdf", "a-2.pdf", "a.pdf"], ["a.pdf", "a-2.pdf", "a-3.pdf"]),
    (["café.pdf", "cafe\u0301.pdf"], ["café.pdf", "cafe\u0301-2.pdf"]),
    (["README", "README"], ["README", "README-2"]),
    (["archive.tar.gz", "archive.tar.gz"], ["archive.tar.gz", "archive.tar-2.gz"]),
    (["metadata.json"], ["metadata-2.json"]),
    (["receipt.json", "Receipt.JSON"], ["receipt-2.json", "Receipt-3.JSON"]),
    (["x.pdf.part", "x.pdf"], ["x.pdf.part", "x.pdf"]),
]


@pytest.mark.parametrize(("names", "stored"), CASES)
def test_side_by_side_names(names: list[str], stored: list[str]) -> None:
    assert side_by_side(names, ("metadata.json", "receipt.json")) == stored
    assert side_by_side(names, ("metadata.json", "receipt.json")) == stored  # retry: same


def _files(names: list[str]) -> list[DepositFile]:
    out = []
    for i, name in enumerate(names):
        data = f"content {i} of {name}".encode()
        out.append(DepositFile(name, [data], hashlib.sha256(data).hexdigest()))
    return out


@pytest.mark.parametrize(("names", "stored"), CASES)
def test_folder_keeps_every_file(tmp_path: Path, names: list[str], stored: list[str]) -> None:
    receipt = FolderDeposit(tmp_path).deposit_sync(TENANT, "d1", _files(names), {"t": 1})
    folder = tmp_path / TENANT / "d1"
    assert receipt["files"] == stored
    for i, (name, kept) in enumerate(zip(names, stored, strict=True)):
        assert (folder / kept).read_bytes() == f"content {i} of {name}".encode()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*stored, "metadata.json", "receipt.json"])


@pytest.mark.parametrize(("names", "stored"), CASES[:4] + CASES[7:8])
def test_webdav_keeps_every_file(names: list[str], stored: list[str]) -> None:
    sim = WebdavSimulator()
    server = sim.serve()
    try:
        async def go() -> dict:
            client = WebdavDeposit(server.base_url, timeout=2)
            try:
                return await client.deposit(TENANT, "d1", _files(names), {"t": 1})
            finally:
                await client.aclose()

        receipt = asyncio.run(go())
    finally:
        server.stop()
    webdav_stored = side_by_side(names, ("metadata.json",))
    assert receipt["files"] == webdav_stored
    for i, (name, kept) in enumerate(zip(names, webdav_stored, strict=True)):
        assert sim.store.files[f"{TENANT}/d1/{kept}"] == f"content {i} of {name}".encode()


def _ref(name: str, i: int) -> FileRef:
    data = f"{i}".encode()
    return FileRef(sha256=hashlib.sha256(data + name.encode()).hexdigest(), size=len(data),
                   name=name, media_type="application/pdf", role=FileRole.MAIN)


@pytest.mark.parametrize(("names", "stored"), CASES[:7])
def test_sip_paths_distinct(names: list[str], stored: list[str]) -> None:
    refs = [_ref(n, i) for i, n in enumerate(names)]
    env = Envelope(tenant=TENANT, flow="document", producer="t", metadata={}, files=refs,
                   created_at=datetime.now(UTC))
    sip = document_files(env, refs, None, store=None, folder="doc")  # type: ignore[arg-type]
    assert [f.path for f in sip] == [f"doc/{n}" for n in stored]

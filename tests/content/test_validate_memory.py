"""The validate step streams: a large file goes through it with memory flat, and a PDF
bound for a signatory is spooled under the data directory, not held (tracemalloc counts
every Python allocation, the chunks included)."""

from __future__ import annotations

import hashlib
import io
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, NameObject

from bus.flows import FlowRegistry
from bus.tenants import Tenant
from schemas.envelope import Envelope, FileRef
from workers.common import validate
from workers.step import StepContext, StepError

MB = 1024 * 1024
FLOWS = FlowRegistry.load()


class _DiskStore:
    """``iter_file`` over a local file, in 1 MiB chunks (as the object store streams)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def iter_file(self, tenant: str, ref: FileRef) -> Iterator[bytes]:
        with self.path.open("rb") as fh:
            while chunk := fh.read(MB):
                yield chunk


def _ctx(tmp_path: Path, path: Path, ref: FileRef, meta: dict) -> StepContext:
    runtime = SimpleNamespace(store=_DiskStore(path), flows=FLOWS,
                              settings=SimpleNamespace(var_dir=tmp_path / "var"))
    tenant = Tenant(siren="216900910", name="Ville", settings={"signature_check": False},
                    connectors={"signature": {"type": "seal"}})
    env = Envelope(tenant=tenant.siren, flow="document", metadata=meta, files=[ref])
    flow = FLOWS.get("document")
    return StepContext(runtime, SimpleNamespace(envelope=env), tenant,  # type: ignore[arg-type]
                       flow.step("validate"))


def _ref(path: Path, media_type: str) -> FileRef:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(MB):
            digest.update(chunk)
    return FileRef(sha256=digest.hexdigest(), size=path.stat().st_size, name=path.name,
                   media_type=media_type)


def _peak_mb(ctx: StepContext, ref: FileRef) -> float:
    tracemalloc.start()
    try:
        validate._verify_file(ctx, 0, ref)
        return tracemalloc.get_traced_memory()[1] / MB
    finally:
        tracemalloc.stop()


def test_a_large_file_goes_through_with_memory_flat(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    with path.open("wb") as fh:
        for i in range(400):  # 400 MB of text
            fh.write((f"ligne {i} " * 120_000)[:MB].encode())
    ref = _ref(path, "text/plain")
    peak = _peak_mb(_ctx(tmp_path, path, ref, {"title": "t"}), ref)
    assert peak < 8, f"validation held {peak:.0f} MB for a 400 MB file"


def _big_pdf(path: Path, pages: int) -> None:
    """A PDF of ``pages`` pages, each with a 1 MiB content stream (incompressible)."""
    writer = PdfWriter()
    for i in range(pages):
        page = writer.add_blank_page(200, 200)
        stream = DecodedStreamObject()
        stream.set_data(b"% " + hashlib.sha256(str(i).encode()).hexdigest().encode() * 32768)
        page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    path.write_bytes(out.getvalue())


def test_a_pdf_for_a_signatory_is_checked_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "arrete.pdf"
    _big_pdf(path, 48)
    ref = _ref(path, "application/pdf")
    ctx = _ctx(tmp_path, path, ref, {"title": "t", "sign": True})
    assert validate._strict_pdf(ctx)
    peak = _peak_mb(ctx, ref)
    assert peak < 16, f"the PDF check held {peak:.0f} MB for a {ref.size // MB} MB PDF"
    assert not any((tmp_path / "var" / "tmp").iterdir())  # the spool is gone


def test_a_hostile_pdf_for_a_signatory_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "arrete.pdf"
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.add_attachment("payload.exe", b"MZ" * 100)
    with path.open("wb") as fh:
        writer.write(fh)
    ref = _ref(path, "application/pdf")
    with pytest.raises(StepError, match=r"file 'arrete.pdf': the PDF contains an embedded"):
        validate._verify_file(_ctx(tmp_path, path, ref, {"title": "t", "sign": True}), 0, ref)
    plain = _ctx(tmp_path, path, ref, {"title": "t"})  # not signed: a PDF as any other
    assert not validate._strict_pdf(plain)
    validate._verify_file(plain, 0, ref)

"""Demo documents, generated on the fly (no binary fixtures shipped): the type every
family's demo uses, a minimal PDF writer, and the ``document`` flow's own demo."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bus.plugins import REGISTRY

DEMO_TENANTS = ("216900910", "214502494")


@dataclass
class DemoDocument:
    """One demo submission: flow, tenant, files to write and metadata."""

    flow: str
    tenant: str
    files: dict[str, bytes]
    metadata: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    def write(self, directory: Path) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, data in self.files.items():
            path = directory / name
            path.write_bytes(data)
            paths.append(path)
        return paths


def minimal_pdf(text: str) -> bytes:
    """A small valid one-page PDF showing ``text`` (Helvetica, ASCII)."""
    safe = text.encode("ascii", "replace").replace(b"\\", b"\\\\").replace(
        b"(", b"\\(").replace(b")", b"\\)")
    stream = b"BT /F1 14 Tf 72 760 Td (" + safe + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


@REGISTRY.demo
def generic_documents(index: int) -> list[DemoDocument]:
    """Documents of the ``document`` flow (the i-th demo round)."""
    first, second = DEMO_TENANTS[index % 2], DEMO_TENANTS[(index + 1) % 2]
    return [
        DemoDocument(
            flow="document", tenant=first, label="courrier PDF",
            files={f"courrier-{index}.pdf": minimal_pdf(f"Courrier de demonstration {index}")},
            metadata={"title": f"Courrier de démonstration n°{index}", "category": "courrier",
                      "keywords": ["demo", "courrier"]}),
        DemoDocument(
            flow="document", tenant=second, label="note + annexe",
            files={f"note-{index}.txt": f"Note de service {index}\n".encode(),
                   f"annexe-{index}.xml": b"<?xml version='1.0'?><annexe n='%d'/>" % index},
            metadata={"title": f"Note de service {index}", "category": "note"}),
    ]

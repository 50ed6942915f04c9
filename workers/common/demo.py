"""Demo documents, generated on the fly (no binary fixtures shipped): the type every
family's demo uses, a minimal PDF writer, and the ``document`` flow's own demo."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bus.plugins import REGISTRY
from connectors.chorus.samples import head_office_siret
from connectors.pdfgen import text_pdf

DEMO_TENANTS = ("216900910", "214502494")
# each demo tenant's one establishment (the ``sirets`` of bus/dev/tenants.yaml): its
# documents (PES IdColl, invoices, pay slips) carry it
DEMO_SIRETS = {siren: head_office_siret(siren) for siren in DEMO_TENANTS}


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
    return text_pdf([text], size=14, encoding="ascii")


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

"""The hostile corpus (``cases.yaml``): a base document per flow, and each case built
from it as the SDK takes it (flow, tenant, metadata, files, key)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from bus.client import BytesInput
from connectors.chorus.samples import DEMO_BUYER, DEMO_SUPPLIER, DemoInvoice, Party, ubl_xml
from schemas.envelope import FileRole
from workers.common.demo import DEMO_SIRETS, minimal_pdf
from workers.finance.demo_pes import demo_pes
from workers.payroll.demo import demo_nir

CASES_FILE = Path(__file__).with_name("cases.yaml")
CITY_A, CITY_B = "216900910", "214502494"
NIR = demo_nir(7, "2")
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ACTE = {"nature": 1, "number": "HOSTILE1", "decision_date": "2025-01-15",
        "subject": "Vote des tarifs", "classification": "7.1",
        "classification_date": "2025-01-01", "deposit": False}
# each flow's good document: (metadata, files as (name, content kind))
BASES: dict[str, tuple[dict[str, Any], list[tuple[str, str]]]] = {
    "document": ({"title": "Courrier", "deposit": False, "archive": False},
                 [("lettre.pdf", "pdf")]),
    "acte": (ACTE, [("acte.pdf", "pdf")]),
    "payslip": ({"matricule": "A123", "period": "2025-01", "employer_siret": DEMO_SIRETS[CITY_A],
                 "nir": NIR, "agent_name": "Camille Martin", "birth_date": "1987-02-03",
                 "email": "camille.martin@exemple.fr", "net_amount": "1834.56",
                 "channels": ["agent-space"]}, [("bulletin.pdf", "pdf")]),
    "helios": ({"title": "Mandats", "budget": "Budget principal"},
               [("PESALR2_HOSTILE.xml", "pes")]),
    "invoice": ({"title": "Facture"}, [("FAC-HOSTILE.xml", "ubl")]),
    "invoice-in": ({"chorus_invoice_id": 1, "invoice_number": "FAC-IN-1"},
                   [("FAC-IN-1.xml", "ubl-received")]),
    "hr-decree": (ACTE | {"nature": 3, "matricule": "A123", "agent_name": "Lucas Bernard",
                          "act_type": "conge"}, [("arrete.pdf", "pdf")]),
}
SPECIAL_VALUES = {"nir-newline": NIR + "\n", "nir-fullwidth": NIR.translate(FULLWIDTH)}
SPECIAL_NAMES = {"long-accents": "é" * 126 + ".pdf", "long-ascii": "a" * 296 + ".pdf"}


@dataclass(frozen=True)
class Case:
    """One hostile submission and the field its refusal must name."""

    id: str
    flow: str
    tenant: str
    metadata: dict[str, Any]
    files: list[BytesInput]
    key: str | None
    field: str
    at: str = "door"  # or "intake": refused by intake's flow checks (document rejected)


def _invoice(number: str, supplier: Party, buyer: Party) -> bytes:
    return ubl_xml(DemoInvoice(number, supplier, buyer, issued=date(2025, 1, 15)))


def content(kind: str, tenant: str, name: str) -> bytes:
    """The bytes of a file of ``kind`` for ``tenant``."""
    own = Party(DEMO_SIRETS.get(tenant, DEMO_SIRETS[CITY_A]), "Ville")
    other = Party(DEMO_SIRETS[CITY_B], "Commune")
    stem = name.rsplit(".", 1)[0] or "PES"
    makers = {
        "pdf": lambda: minimal_pdf(f"Document {name}"),
        "pes": lambda: demo_pes(own.siret, stem),
        "pes-other-tenant": lambda: demo_pes(other.siret, stem),
        "pes-outsider": lambda: demo_pes(DEMO_BUYER.siret, stem),
        "ubl": lambda: _invoice(stem, own, DEMO_BUYER),
        "ubl-other-tenant": lambda: _invoice(stem, other, DEMO_BUYER),
        "ubl-outsider": lambda: _invoice(stem, DEMO_SUPPLIER, DEMO_BUYER),
        "ubl-received": lambda: _invoice(stem, DEMO_SUPPLIER, own),
        "ubl-number-newline": lambda: _invoice(f"{stem}\n2", own, DEMO_BUYER),
        "ubl-buyer-name-tab": lambda: _invoice(stem, own, Party(DEMO_BUYER.siret, "CH\tX")),
    }
    return makers[kind]()


def _files(specs: list[tuple[str, str]], tenant: str) -> list[BytesInput]:
    return [BytesInput(content(kind, tenant, name), name,
                       FileRole.MAIN if i == 0 else FileRole.ANNEX)
            for i, (name, kind) in enumerate(specs)]


def base(flow: str, tenant: str = CITY_A, tag: str = "") -> tuple[dict[str, Any],
                                                                   list[BytesInput]]:
    """The good document of ``flow`` (``tag`` makes its numbers and names unique)."""
    meta, specs = copy.deepcopy(BASES[flow])
    if tag and "number" in meta:
        meta["number"] = f"{meta['number']}{tag}"
    if tag and flow == "payslip":
        meta["matricule"] = f"A{tag}"
    specs = [(name.replace(".", f"{tag}.", 1) if kind != "pdf" else name, kind)
             for name, kind in specs]
    return meta, _files(specs, tenant)


def load_cases() -> list[Case]:
    """Every case of ``cases.yaml``, built."""
    raw = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))["cases"]
    return [_case(c) for c in raw]


def _case(raw: dict[str, Any]) -> Case:
    flow, tenant = raw["flow"], str(raw.get("tenant", CITY_A))
    meta, files = base(flow, CITY_A)
    for key, value in (raw.get("meta") or {}).items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = SPECIAL_VALUES.get(value, value) if isinstance(value, str) else value
    if "files" in raw:
        files = _files([(SPECIAL_NAMES.get(f["name"], f["name"]), f["content"])
                        for f in raw["files"]], CITY_A)
    return Case(id=raw["id"], flow=flow, tenant=tenant, metadata=meta, files=files,
                key=raw.get("key"), field=raw["field"], at=raw.get("at", "door"))

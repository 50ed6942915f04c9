"""Demo invoices: EN 16931 CII (as a Factur-X PDF) and UBL 2.1, generated on the fly."""

from __future__ import annotations

import base64
import json
import time
from decimal import Decimal

import httpx
from facturx import generate_from_binary

from bus.client import DematClient
from bus.plugins import REGISTRY
from connectors.chorus.samples import (
    DEMO_BUYER,
    DEMO_SUPPLIER,
    DemoInvoice,
    Party,
    cii_xml,
    tenant_party,
    ubl_xml,
)
from workers.common.demo import DEMO_SIRETS, DEMO_TENANTS, DemoDocument, minimal_pdf
from workers.finance.demo_pes import demo_pes
from workers.finance.importer import PRODUCER, import_received, import_tenants

__all__ = ["DEMO_BUYER", "DEMO_SUPPLIER", "DemoInvoice", "Party", "cii_xml", "facturx_pdf",
           "invoice_documents", "pes_documents", "received_invoice_rows", "tenant_party",
           "ubl_xml"]


def facturx_pdf(inv: DemoInvoice) -> bytes:
    """A Factur-X PDF/A-3: a one-page PDF with the CII XML embedded (factur-x package)."""
    pdf = minimal_pdf(f"Facture {inv.number} - {inv.supplier.name} - {inv.gross} EUR TTC")
    return generate_from_binary(pdf, cii_xml(inv), flavor="factur-x", level="en16931",
                                check_xsd=True)


def _stamp() -> str:
    return f"{time.time_ns() // 1_000_000 % 100_000_000:08d}"


@REGISTRY.demo
def pes_documents(index: int) -> list:
    """A PES Aller (two expense bordereaux) of the first demo tenant, sealed and sent."""
    tenant = DEMO_TENANTS[0]
    name = f"PESALR2_{tenant}_{_stamp()}{index}"
    return [DemoDocument(flow="helios", tenant=tenant, label="PES Aller (dépenses)",
                         files={f"{name}.xml": demo_pes(DEMO_SIRETS[tenant], name)},
                         metadata={"title": f"Mandats {name}", "budget": "Budget principal"})]


@REGISTRY.demo
def invoice_documents(index: int) -> list:
    """Outbound demo invoices: a Factur-X PDF from one tenant, a UBL from the other."""
    first, second = DEMO_TENANTS[index % 2], DEMO_TENANTS[(index + 1) % 2]
    stamp = _stamp()
    fx = DemoInvoice(f"FX{stamp}-{index}", tenant_party(first, "Ville de Démo-sur-Rhône"),
                     DEMO_BUYER, label="Mise à disposition d'une salle")
    ubl = DemoInvoice(f"UBL{stamp}-{index}", tenant_party(second, "Commune d'Exemple-en-Val"),
                      DEMO_BUYER, label="Repas de cantine, novembre", net=Decimal("250.00"))
    return [
        DemoDocument(flow="invoice", tenant=first, label="facture Factur-X",
                     files={f"{fx.number}.pdf": facturx_pdf(fx)},
                     metadata={"title": f"Facture {fx.number}", "format": "facturx"}),
        DemoDocument(flow="invoice", tenant=second, label="facture UBL",
                     files={f"{ubl.number}.xml": ubl_xml(ubl)},
                     metadata={"title": f"Facture {ubl.number}", "invoice_number": ubl.number}),
    ]


@REGISTRY.demo_import
async def received_invoice_rows(client: DematClient, count: int) -> list[dict]:
    """Demo of the inbound side: a supplier's invoice reaches each tenant's Chorus Pro
    mailbox (simulator), then the import submits it as an ``invoice-in`` document."""



    sims = json.loads((client.runtime.settings.var_dir / "simulators.json").read_text())
    rows: list[dict] = []
    async with httpx.AsyncClient(timeout=10) as http:
        for siren in import_tenants(client):
            login = client.runtime.tenants.get(siren).connectors["chorus"].options["login"]
            for i in range(count):
                inv = DemoInvoice(f"FR{_stamp()}-{i}", DEMO_SUPPLIER, tenant_party(siren, "Ville"),
                                  label="Fournitures de bureau")
                resp = await http.post(f"{sims['chorus']}/_sim/received", json={
                    "recipient": login, "name": f"{inv.number}.xml",
                    "file": base64.b64encode(ubl_xml(inv)).decode()})
                resp.raise_for_status()
            async with DematClient(client.runtime.settings, producer_name=PRODUCER) as importer:
                imported = await import_received(importer, siren)  # the import's own name
            for r in imported:
                if not r["duplicate"]:
                    rows.append({"id": r["doc_id"], "flow": "invoice-in", "tenant": siren,
                                 "label": f"facture reçue {r['number']}", "state": "submitted",
                                 "step": None, "terminal": False, "error": None})
    return rows

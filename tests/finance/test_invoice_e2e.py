"""Invoices end to end: real embedded stack, worker processes and the Chorus Pro simulator."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

import httpx
import pytest

from bus.client import DematClient
from bus.dev.launcher import Services, wait_until
from bus.settings import Settings
from schemas.messages import DocState
from workers.finance.demo import (
    DEMO_BUYER,
    DEMO_SUPPLIER,
    DemoInvoice,
    facturx_pdf,
    tenant_party,
    ubl_xml,
)

pytestmark = pytest.mark.stack
TENANT = "216900910"
SUPPLIER = tenant_party(TENANT, "Ville de Démo-sur-Rhône")


def _sim(settings: Settings) -> str:
    assert wait_until(lambda: (settings.var_dir / "simulators.json").exists(), 180)
    return json.loads((settings.var_dir / "simulators.json").read_text())["chorus"]


async def _submit(settings: Settings, flow: str, files: dict[str, bytes], meta: dict,
                  tmp: Path, timeout: float = 200) -> list:
    async with DematClient(settings) as client:
        ids = []
        for name, data in files.items():
            path = tmp / name
            path.write_bytes(data)
            ids.append((await client.submit(flow, [path], tenant=TENANT, metadata=meta)).doc_id)
        return list(await asyncio.gather(*(client.wait(d, timeout) for d in ids)))


def test_invoices_reach_paid_once_and_export_every_reply(
        settings: Settings, services: Services, demat, tmp_path: Path) -> None:
    sim = _sim(settings)
    stamp = time.time_ns() % 10**9
    fx = DemoInvoice(f"FXE{stamp}", SUPPLIER, DEMO_BUYER)
    ubl = DemoInvoice(f"UBLE{stamp}", SUPPLIER, DEMO_BUYER)
    bad = ubl_xml(DemoInvoice(f"BAD{stamp}", SUPPLIER, DEMO_BUYER))
    bad = bad[:bad.index(b"<cbc:IssueDate>")] + bad[bad.index(b"</cbc:IssueDate>") + 16:]
    turned_down = DemoInvoice(f"REJET{stamp}", SUPPLIER, DEMO_BUYER)  # simulator: REJETEE
    files = {f"{fx.number}.pdf": facturx_pdf(fx), f"{ubl.number}.xml": ubl_xml(ubl),
             f"BAD{stamp}.xml": bad, f"{turned_down.number}.xml": ubl_xml(turned_down)}
    paid_pdf, paid_ubl, refused, rejected = asyncio.run(_submit(
        settings, "invoice", files, {"title": "Facture"}, tmp_path))
    assert rejected.state == DocState.REJECTED and "REJETEE" in rejected.error.message
    assert any(a.file.name == "chorus-status-history.json" for a in rejected.artefacts)
    for state in (paid_pdf, paid_ubl):
        assert state is not None and state.state == DocState.COMPLETED, state
        assert state.record("status").output["status"] == "MISE_EN_PAIEMENT"
        assert state.record("deposit").output["numero_flux"].startswith("CPP")
    assert refused.state == DocState.REJECTED
    assert refused.error.field == "files[0]" and "IssueDate" in refused.error.message

    counts = httpx.get(f"{sim}/_sim/counts").json()["deposits"]
    assert counts[f"{SUPPLIER.siret}/{fx.number}"] == 1 == counts[f"{SUPPLIER.siret}/{ubl.number}"]
    out = tmp_path / "export"
    run = demat("export", paid_pdf.doc_id, "--dir", str(out))
    assert run.returncode == 0, run.stderr
    assert (out / "files" / f"{fx.number}.pdf").read_bytes() == files[f"{fx.number}.pdf"]
    history = json.loads((out / "artefacts" / "status" / "chorus-status-history.json").read_text())
    assert history["statutCourantCode"] == "MISE_EN_PAIEMENT"
    assert (out / "artefacts" / "deposit" / "chorus-deposit-receipt.json").exists()
    assert (out / "artefacts" / "deposit" / "chorus-flux-report.json").exists()


def test_received_invoices_imported_once_delivered_and_marked_paid(
        settings: Settings, services: Services, demat) -> None:
    sim = _sim(settings)
    login = "TECH_216900910@cpro.fr"
    number = f"FRIN{time.time_ns() % 10**9}"
    data = ubl_xml(DemoInvoice(number, DEMO_SUPPLIER, SUPPLIER))
    httpx.post(f"{sim}/_sim/received", json={"recipient": login, "name": f"{number}.xml",
                                             "file": base64.b64encode(data).decode()}
               ).raise_for_status()
    first = demat("invoices", "import", "--tenant", TENANT, "--json")
    again = demat("invoices", "import", "--tenant", TENANT, "--json")
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    row = next(r for r in json.loads(first.stdout) if r["number"] == number)
    assert row["duplicate"] is False
    # still waiting on Chorus Pro: the same document again; already paid: not listed any more
    assert all(r["duplicate"] and r["doc_id"] == row["doc_id"]
               for r in json.loads(again.stdout) if r["number"] == number)

    async def wait() -> object:
        async with DematClient(settings) as client:
            return await client.wait(row["doc_id"], 180)

    state = asyncio.run(wait())
    assert state is not None and state.state == DocState.COMPLETED, state
    delivered = Path(state.record("deliver").output["location"])
    assert (delivered / f"{number}.xml").read_bytes() == data
    assert state.record("status").output == {"invoice_id": row["chorus_invoice_id"],
                                             "status": "MISE_EN_PAIEMENT", "sent": True}
    updates = httpx.get(f"{sim}/_sim/counts").json()["status_updates"]
    assert updates[f"{row['chorus_invoice_id']}/MISE_EN_PAIEMENT"] == 1

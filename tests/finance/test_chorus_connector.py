"""Chorus Pro client against the simulator over HTTP: OAuth, deposit once, life-cycle."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import httpx
import pytest

from connectors.chorus.client import ChorusClient
from connectors.chorus.simulator import ChorusSimulator
from connectors.errors import BusinessRefusal, TransientError
from connectors.simulator import FailurePlan
from workers.finance.demo import (
    DEMO_BUYER,
    DEMO_SUPPLIER,
    DemoInvoice,
    facturx_pdf,
    tenant_party,
    ubl_xml,
)

SUPPLIER = tenant_party("216900910", "Ville de Démo")


@pytest.fixture()
def sim() -> Iterator[ChorusSimulator]:
    simulator = ChorusSimulator(step_delay=0.0, clients={"app": "secret"}, seed_received=0)
    simulator.start()
    yield simulator
    simulator.stop()


def _client(sim: ChorusSimulator, **kw: object) -> ChorusClient:
    url = sim._server.base_url  # type: ignore[union-attr]
    return ChorusClient(url, oauth_url=url + "/api/oauth/token", client_id="app",
                        client_secret=kw.pop("secret", "secret"),  # type: ignore[arg-type]
                        login="TECH_1@cpro.fr", password="pw", **kw)  # type: ignore[arg-type]


def test_deposit_once_even_when_the_answer_is_lost(sim: ChorusSimulator) -> None:
    inv = DemoInvoice("FX-LOST-1", SUPPLIER, DEMO_BUYER)
    pdf = facturx_pdf(inv)

    async def go() -> tuple:
        chorus = _client(sim, timeout=0.5)
        assert await chorus.find_issued(inv.number) is None
        sim.failures = FailurePlan(timeout_rate=1.0, timeout_seconds=1.5)
        with pytest.raises(TransientError):  # deposited, but the answer never came
            await chorus.deposit_flux(pdf, "f.pdf", "IN_DP_E2_CII_FACTURX")
        sim.failures = FailurePlan()
        again = await chorus.submit_invoice(pdf, "f.pdf", "IN_DP_E2_CII_FACTURX", inv.number,
                                            SUPPLIER.siret)
        history = await chorus.history(again.invoice_id or 0)
        await chorus.aclose()
        return again, history

    again, history = asyncio.run(go())
    assert again.created is False and again.invoice_id
    assert sim.deposits.snapshot() == {f"{SUPPLIER.siret}/FX-LOST-1": 1}
    assert history.status == "MISE_EN_PAIEMENT"
    assert history.events[0].status == "DEPOSEE"


def test_flux_report_and_rejections(sim: ChorusSimulator) -> None:
    async def go() -> tuple:
        chorus = _client(sim)
        bad = await chorus.deposit_flux(b"<Invoice/>", "bad.xml", "IN_DP_E1_UBL_INVOICE")
        report = await chorus.flux_report(bad.numero_flux)
        rejected = DemoInvoice("UBL-REJET-1", SUPPLIER, DEMO_BUYER)
        ok = await chorus.deposit_flux(ubl_xml(rejected), "r.xml", "IN_DP_E1_UBL_INVOICE")
        integrated = await chorus.flux_report(ok.numero_flux)
        found = await chorus.find_by_flux(ok.numero_flux)
        history = await chorus.history(found.invoice_id if found else 0)
        await chorus.aclose()
        return report, integrated, found, history

    report, integrated, found, history = asyncio.run(go())
    assert report.rejected and "not an invoice" in report.errors[0]
    assert integrated.integrated and found is not None and found.number == "UBL-REJET-1"
    assert history.status == "REJETEE" and "engagement" in history.events[-1].comment


def test_bad_credentials_are_refused(sim: ChorusSimulator) -> None:
    async def go() -> None:
        chorus = _client(sim, secret="wrong")
        try:
            await chorus.find_issued("X")
        finally:
            await chorus.aclose()

    with pytest.raises(Exception, match="401"):
        asyncio.run(go())


def test_received_invoices_searched_downloaded_and_status_set_once(
        sim: ChorusSimulator) -> None:
    data = ubl_xml(DemoInvoice("FR-IN-1", DEMO_SUPPLIER, SUPPLIER))
    url = sim._server.base_url  # type: ignore[union-attr]
    httpx.post(f"{url}/_sim/received", json={
        "recipient": "TECH_1@cpro.fr", "name": "FR-IN-1.xml",
        "file": base64.b64encode(data).decode()}).raise_for_status()

    async def go() -> tuple:
        chorus = _client(sim)
        found = await chorus.search_received(status="MISE_A_DISPOSITION")
        name, content = await chorus.download(found[0].invoice_id, number=found[0].number)
        first = await chorus.set_received_status(found[0].invoice_id, "MISE_EN_PAIEMENT")
        second = await chorus.set_received_status(found[0].invoice_id, "MISE_EN_PAIEMENT")
        with pytest.raises(BusinessRefusal, match="statut final MISE_EN_PAIEMENT"):
            await chorus.update_received(found[0].invoice_id, "SUSPENDUE")
        await chorus.aclose()
        return found, name, content, first, second

    found, name, content, first, second = asyncio.run(go())
    assert [f.number for f in found] == ["FR-IN-1"] and (name, content) == ("FR-IN-1.xml", data)
    assert first[1] is True and first[0].status == "MISE_EN_PAIEMENT" and second[1] is False
    assert sim.status_updates.snapshot() == {f"{found[0].invoice_id}/MISE_EN_PAIEMENT": 1}

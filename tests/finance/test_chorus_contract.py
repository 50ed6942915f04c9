"""The Chorus Pro simulator holds to PISTE/Chorus Pro's published contract, and the
request shapes our client sent before (invented names) get the real refusal."""

from __future__ import annotations

import asyncio
import base64
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors.chorus.client import (
    PISTE_API,
    PISTE_OAUTH,
    SANDBOX_API,
    SANDBOX_OAUTH,
    ChorusClient,
)
from connectors.chorus.simulator import ChorusSimulator
from connectors.errors import BusinessRefusal
from workers.finance.demo import DEMO_BUYER, DEMO_SUPPLIER, DemoInvoice, tenant_party, ubl_xml

SUPPLIER = tenant_party("216900910", "Ville de Démo")
ACCOUNT = base64.b64encode(b"TECH_1@cpro.fr:pw").decode()


@pytest.fixture()
def sim() -> Iterator[ChorusSimulator]:
    simulator = ChorusSimulator(step_delay=0.0, clients={"app": "secret"}, seed_received=0)
    simulator.start()
    yield simulator
    simulator.stop()


def _url(sim: ChorusSimulator) -> str:
    return sim._server.base_url  # type: ignore[union-attr]


def _client(sim: ChorusSimulator, **kw: object) -> ChorusClient:
    url = _url(sim)
    return ChorusClient(url, oauth_url=url + "/api/oauth/token", client_id="app",
                        client_secret="secret", login="TECH_1@cpro.fr", password="pw",
                        **kw)  # type: ignore[arg-type]


def _token(sim: ChorusSimulator) -> str:
    resp = httpx.post(_url(sim) + "/api/oauth/token", data={
        "grant_type": "client_credentials", "client_id": "app", "client_secret": "secret",
        "scope": "openid"})
    assert resp.status_code == 200 and resp.json()["token_type"] == "Bearer"
    return resp.json()["access_token"]


def _post(sim: ChorusSimulator, path: str, body: object, *, token: str | None = None,
          account: str | None = ACCOUNT, raw: bytes | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json;charset=utf-8"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if account is not None:
        headers["cpro-account"] = account
    if raw is not None:
        return httpx.post(_url(sim) + path, content=raw, headers=headers)
    return httpx.post(_url(sim) + path, json=body, headers=headers)


def _deposit(sim: ChorusSimulator, token: str, number: str) -> str:
    data = ubl_xml(DemoInvoice(number, SUPPLIER, DEMO_BUYER))
    resp = _post(sim, "/cpro/factures/v1/deposer/flux", {
        "fichierFlux": base64.b64encode(data).decode(), "nomFichier": f"{number}.xml",
        "syntaxeFlux": "IN_DP_E1_UBL_INVOICE", "avecSignature": False}, token=token)
    assert resp.status_code == 200 and resp.json()["codeRetour"] == 0, resp.text
    return resp.json()["numeroFluxDepot"]


def test_before_old_request_shapes_get_the_real_refusals(sim: ChorusSimulator) -> None:
    """What the client sent before this change, as it sent it."""
    token = _token(sim)
    numero = _deposit(sim, token, "OLD-1")
    # old search criteria and paging (flat pageResultat/nbResultatsParPage, invented names)
    old_issued = _post(sim, "/cpro/factures/v1/rechercher/fournisseur", {
        "idUtilisateurCourant": 0, "numeroFacture": "OLD-1", "pageResultat": 1,
        "nbResultatsParPage": 100}, token=token)
    old_received = _post(sim, "/cpro/factures/v1/rechercher/recipiendaire", {
        "idUtilisateurCourant": 0, "dateDepotDebut": "2026-01-01",
        "statut": "MISE_A_DISPOSITION", "idStructure": 12, "pageResultat": 1,
        "nbResultatsParPage": 100}, token=token)
    for resp in (old_issued, old_received):
        assert resp.status_code == 400
        assert set(resp.json()) == {"codeRetour", "libelle"} and resp.json()["codeRetour"] != 0
        assert "Champ inconnu" in resp.json()["libelle"]
    # the old flow report: consulterCR has no invoice ids (the old client waited forever)
    report = _post(sim, "/cpro/transverses/v1/consulterCR", {
        "idUtilisateurCourant": 0, "numeroFluxDepot": numero}, token=token).json()
    assert report["etatCourantFlux"] == "IN_INTEGRE" and "listeIdFacture" not in report
    detailed = _post(sim, "/cpro/transverses/v1/consulterCRDetaille",
                     {"numeroFluxDepot": numero}, token=token).json()
    assert detailed["etatCourantDepotFlux"] == "IN_INTEGRE" and "etatCourantFlux" not in detailed
    # the old answer fields read by the client are not in the real answers
    found = _post(sim, "/cpro/factures/v1/rechercher/fournisseur", {
        "numeroFluxDepot": numero}, token=token).json()
    invoice_id = found["listeFactures"][0]["identifiantFactureCPP"]
    assert "idFacture" not in found["listeFactures"][0]
    history = _post(sim, "/cpro/factures/v1/consulter/historique", {
        "idFacture": invoice_id}, token=token).json()
    assert "statutCode" not in history["historiquesDesStatuts"]["histoStatut"][0]
    assert history["historiquesDesStatuts"]["histoStatut"][0]["histoStatutCode"]


def test_piste_refuses_a_missing_token_or_technical_account(sim: ChorusSimulator) -> None:
    no_token = _post(sim, "/cpro/factures/v1/consulter/historique", {"idFacture": 1})
    assert no_token.status_code == 401
    assert no_token.json()["httpCode"] == "401" and no_token.json()["httpMessage"]
    no_account = _post(sim, "/cpro/factures/v1/consulter/historique", {"idFacture": 1},
                       token=_token(sim), account=None)
    assert no_account.status_code == 403 and "cpro-account" in no_account.json()[
        "moreInformation"]
    bad_grant = httpx.post(_url(sim) + "/api/oauth/token", json={"client_id": "app"})
    assert bad_grant.status_code == 400


def test_bad_json_unknown_fields_and_bad_values_are_400s(sim: ChorusSimulator) -> None:
    token = _token(sim)
    path = "/cpro/factures/v1/deposer/flux"
    broken = _post(sim, path, None, token=token, raw=b'{"fichierFlux": ')
    unknown = _post(sim, path, {"fichierFlux": "eA==", "nomFichier": "a.xml",
                                "syntaxeFlux": "IN_DP_E1_UBL_INVOICE", "format": "UBL"},
                    token=token)
    bad_paging = _post(sim, "/cpro/factures/v1/rechercher/fournisseur", {
        "rechercheFactureParFournisseur": {"page": 1}}, token=token)
    bad_id = _post(sim, "/cpro/factures/v1/consulter/historique", {"idFacture": "12"},
                   token=token)
    bad_syntax = _post(sim, path, {"fichierFlux": "eA==", "nomFichier": "a.xml",
                                   "syntaxeFlux": "UBL"}, token=token)
    for resp, word in ((broken, "JSON"), (unknown, "format"), (bad_paging, "page"),
                       (bad_id, "idFacture"), (bad_syntax, "syntaxeFlux")):
        assert resp.status_code == 400, resp.text
        assert resp.json()["codeRetour"] != 0 and word in resp.json()["libelle"]


def test_no_result_is_code_20000_not_a_refusal(sim: ChorusSimulator) -> None:
    resp = _post(sim, "/cpro/factures/v1/rechercher/fournisseur",
                 {"numeroFacture": "NOWHERE"}, token=_token(sim))
    assert resp.status_code == 200 and resp.json()["codeRetour"] == 20000

    async def go() -> tuple:
        chorus = _client(sim)
        try:
            return (await chorus.find_issued("NOWHERE"), await chorus.search_received(),
                    await chorus.find_by_flux("CPP0000"))
        finally:
            await chorus.aclose()

    assert asyncio.run(go()) == (None, [], None)


def test_searches_scan_every_page(sim: ChorusSimulator) -> None:
    token = _token(sim)
    for n in range(5):
        _deposit(sim, token, f"PAGE-{n}")
    for n in range(5):
        data = ubl_xml(DemoInvoice(f"IN-{n}", DEMO_SUPPLIER, SUPPLIER))
        sim.receive("TECH_1@cpro.fr", data, f"IN-{n}.xml")
    page = _post(sim, "/cpro/factures/v1/rechercher/recipiendaire",
                 {"paramRecherche": {"nbResultatsParPage": 2, "pageResultatDemandee": 3}},
                 token=token).json()
    assert (page["pageCourante"], page["pages"], page["total"]) == (3, 3, 5)

    async def go() -> tuple:
        chorus = _client(sim, page_size=2)
        try:
            return await chorus.search_issued({}), await chorus.search_received(
                status="MISE_A_DISPOSITION")
        finally:
            await chorus.aclose()

    issued, received = asyncio.run(go())
    assert sorted(r.number for r in issued) == [f"PAGE-{n}" for n in range(5)]
    assert sorted(r.number for r in received) == [f"IN-{n}" for n in range(5)]
    assert all(r.supplier_id == SUPPLIER.siret for r in issued)


def test_rejected_flow_gives_its_reasons_and_download_reads_fichier_resultat(
        sim: ChorusSimulator) -> None:
    data = ubl_xml(DemoInvoice("ZIP-1", DEMO_SUPPLIER, SUPPLIER))
    inv = sim.receive("TECH_1@cpro.fr", data, "ZIP-1.xml")

    async def go() -> tuple:
        chorus = _client(sim)
        try:
            bad = await chorus.deposit_flux(b"<Invoice/>", "bad.xml", "IN_DP_E1_UBL_INVOICE")
            report = await chorus.flux_report(bad.numero_flux)
            zipped = await chorus.download(inv.id, "ZIP")
            plain = await chorus.download(inv.id, "XML", number="ZIP-1")
            with pytest.raises(BusinessRefusal, match="HTTP 400"):
                await chorus.download(inv.id, "HTML")
            return report, zipped, plain
        finally:
            await chorus.aclose()

    report, zipped, plain = asyncio.run(go())
    assert report.rejected and report.errors and report.raw["listeErreurDP"][0][
        "libelleErreurDP"] == report.errors[0]
    assert zipped == ("ZIP-1.xml", data) == plain
    archive = zipfile.ZipFile(io.BytesIO(base64.b64decode(_post(
        sim, "/cpro/factures/v1/telecharger/groupe",
        {"listeFacture": [{"idFacture": inv.id}], "format": "ZIP"},
        token=_token(sim)).json()["fichierResultat"])))
    assert archive.namelist() == ["ZIP-1.xml"]


def test_piste_hosts_and_token_form(tmp_path: Path) -> None:
    prod = ChorusClient.from_options({"client_id": "a"}, var_dir=tmp_path)
    sandbox = ChorusClient.from_options({"sandbox": True}, var_dir=tmp_path)
    local = ChorusClient.from_options({"url": "http://127.0.0.1:9"}, var_dir=tmp_path)
    assert (prod.api_url, prod.oauth_url) == (PISTE_API, PISTE_OAUTH)
    assert (sandbox.api_url, sandbox.oauth_url) == (SANDBOX_API, SANDBOX_OAUTH)
    assert PISTE_OAUTH == "https://oauth.piste.gouv.fr/api/oauth/token"
    assert SANDBOX_API == "https://sandbox-api.piste.gouv.fr"
    assert local.oauth_url == "http://127.0.0.1:9/api/oauth/token"
    for client in (prod, sandbox, local):
        asyncio.run(client.aclose())


def test_a_redeposit_rejected_as_duplicate_ends_with_the_first_invoice() -> None:
    """The answer of a deposit is lost before the flow is integrated: the search finds
    nothing yet, the invoice goes again, Chorus Pro rejects the copy; the outcome is the
    invoice of the first flow, not a rejection."""
    sim = ChorusSimulator(step_delay=0.3, clients={"app": "secret"}, seed_received=0)
    sim.start()
    data = ubl_xml(DemoInvoice("TWICE-1", SUPPLIER, DEMO_BUYER))

    async def go() -> tuple:
        chorus = _client(sim)
        try:
            first = await chorus.submit_invoice(data, "t.xml", "IN_DP_E1_UBL_INVOICE",
                                                "TWICE-1", SUPPLIER.siret)
            again = await chorus.submit_invoice(data, "t.xml", "IN_DP_E1_UBL_INVOICE",
                                                "TWICE-1", SUPPLIER.siret)
            waiting = await chorus.deposit_outcome(first.numero_flux, "TWICE-1")
            await asyncio.sleep(0.8)
            return (waiting, await chorus.deposit_outcome(first.numero_flux, "TWICE-1"),
                    await chorus.deposit_outcome(again.numero_flux, "TWICE-1", SUPPLIER.siret),
                    await chorus.deposit_outcome(again.numero_flux, "OTHER"))
        finally:
            await chorus.aclose()

    try:
        waiting, first, copy, unrelated = asyncio.run(go())
    finally:
        sim.stop()
    assert waiting[1] is None and not waiting[0].rejected
    assert first[0].integrated and first[1] is not None
    assert copy[0].rejected and "Doublon" in copy[0].errors[0]
    assert copy[1] is not None and copy[1].invoice_id == first[1].invoice_id
    assert unrelated[1] is None

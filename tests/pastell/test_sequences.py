"""The call sequences of two of the incumbent's clients, replayed over HTTP against the
session's bus: Maarch Courrier sending a mail for signature (i-Parapheur of city B),
MegActe sending an acte to the prefecture then cancelling it (city A). Every status
code and key the clients read is checked, and both documents complete in the bus."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date

import httpx
import pytest
from lxml import etree

from bus.dev.launcher import Services
from bus.settings import Settings
from connectors.tsa.token import parse_response, tst_info
from tests.pastell.support import CITY_A, CITY_B, Pastell, form_body, make_callers
from workers.common.demo import minimal_pdf

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def callers(settings: Settings) -> dict[str, tuple[str, str]]:
    return make_callers(settings)


@pytest.fixture(scope="module")
def http(api: str, services: Services) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api, timeout=60) as client:
        yield client


def test_maarch_courrier_signature_sequence(http: httpx.Client, callers: dict) -> None:
    login, token = callers["maarch"]
    maarch = Pastell(http, token, login)  # Maarch authenticates with Basic
    assert maarch.call("GET", "/version", 200)["version"]
    id_e = maarch.entity_of(CITY_B)
    connectors = maarch.call("GET", f"/entite/{id_e}/connecteur", 200)
    [parapheur] = [c for c in connectors if c["id_connecteur"] == "iparapheur"]
    assert "ls-document-pdf" in maarch.call("GET", "/flux", 200)
    types = maarch.call("GET", f"/entite/{id_e}/connecteur/{parapheur['id_ce']}"
                               "/externalData/iparapheur_type", 200)
    assert types == ["DEMAT"]

    created = maarch.call("POST", f"/entite/{id_e}/document?type=ls-document-pdf", 201,
                          json={})
    id_d = created["info"]["id_d"]  # where Maarch reads it
    assert len(id_d) == 7 and created["id_d"] == id_d
    assert created["info"]["type"] == "ls-document-pdf"
    assert created["last_action"]["action"] == "creation"
    doc = f"/entite/{id_e}/document/{id_d}"
    subtypes = maarch.call("GET", f"{doc}/externalData/iparapheur_sous_type", 200)
    patched = maarch.call("PATCH", doc, 200, data={
        "libelle": "Courrier à signer é", "iparapheur_type": types[0],
        "iparapheur_sous_type": subtypes[0], "envoi_signature": "true"})
    assert patched["result"] == "ok" and patched["formulaire_ok"] == 0
    assert patched["content"]["info"]["titre"] == "Courrier à signer é"
    original = minimal_pdf("Courrier 2026")
    maarch.call("POST", f"{doc}/file/document", 201, **form_body({
        "file_name": "courrier.pdf", "file_content": original}))
    uploaded = maarch.call("POST", f"{doc}/file/annexe/0", 201, **form_body({
        "file_name": "annexe.pdf", "file_content": minimal_pdf("Annexe")}))
    assert uploaded["formulaire_ok"] == 1, uploaded["message"]
    assert uploaded["content"]["data"]["document"] == ["courrier.pdf"]
    assert "orientation" in uploaded["content"]["action_possible"]

    sent = maarch.call("POST", f"{doc}/action/orientation", 201)
    assert sent["result"] is True
    # Maarch's cron: verif-iparapheur while offered, then the i-Parapheur log
    assert "verif-iparapheur" in maarch.call("GET", doc, 200)["action_possible"]
    checked = maarch.call("POST", f"{doc}/action/verif-iparapheur", 201)
    assert checked["result"] is True
    done = maarch.wait_state(id_e, id_d, ("termine",))
    assert done["last_action"]["action"] == "termine", done["last_action"]
    assert done["data"]["document_signe"]
    assert "verif-iparapheur" not in done["action_possible"]
    log = etree.fromstring(maarch.call("GET", f"{doc}/file/iparapheur_historique", 200))
    assert log.findtext("MessageRetour/codeRetour") == "OK"
    assert [e.findtext("status") for e in log.iter("LogDossier")] == ["Signe"]
    assert log.find("LogDossier").findtext("nom")
    signed = maarch.call("GET", f"{doc}/file/document", 200)
    assert signed.startswith(b"%PDF") and signed != original
    refused = http.post(f"/api/v2{doc}/action/verif-iparapheur", headers=maarch.headers)
    assert refused.status_code == 400
    assert refused.json()["error-message"].startswith("L'action « verif-iparapheur »")

    assert maarch.call("POST", f"{doc}/action/supression", 201)["result"] is True
    gone = maarch.call("GET", doc, 404)
    assert gone == {"status": "error",
                    "error-message": f"Le document {id_d} n'appartient pas à l'entité {id_e}"}


def _typology(listed: dict[str, str], prefer: str) -> str:
    return prefer if prefer in listed else sorted(listed)[0]


def test_megacte_acte_sequence(http: httpx.Client, callers: dict) -> None:
    megacte = Pastell(http, callers["megacte"][1])
    id_e = megacte.entity_of(CITY_A)
    created = megacte.call("POST", f"/entite/{id_e}/document", 201, data={"type": "ls-actes"})
    id_d = created["id_d"]
    doc = f"/entite/{id_e}/document/{id_d}"
    number = f"MA{id_d.upper()}"
    patched = megacte.call("PATCH", doc, 200, data={
        "objet": "Délibération tarifs", "acte_nature": "1", "numero_de_lacte": number,
        "date_de_lacte": date.today().isoformat(), "classification": "7.1",
        "envoi_tdt": "on"})
    assert patched["formulaire_ok"] == 0 and "arrete" in patched["message"]
    # MegActe posts multipart: a plain file_name part and the file as "file", at the
    # number after the field's files it read in the detail
    for field, name, text in (("arrete", "deliberation.pdf", number),
                              ("autre_document_attache", "annexe.pdf", "Annexe")):
        existing = megacte.call("GET", doc, 200)["data"].get(field, [])
        megacte.call("POST", f"{doc}/file/{field}/{len(existing)}", 201, files={
            "file_name": (None, name), "file": (name, minimal_pdf(text), "application/pdf")})
    refused = http.post(f"/api/v2{doc}/action/orientation", headers=megacte.headers)
    assert refused.status_code == 400, refused.text
    assert "Typologie" in refused.json()["error-message"]

    subjects = megacte.call("GET", f"{doc}/externalData/classification", 200)
    assert "7.1" in subjects  # the tenant's classification, as S²LOW gave it
    pieces = megacte.call("GET", f"{doc}/externalData/type_piece", 200)
    assert pieces["pieces"] == ["deliberation.pdf", "annexe.pdf"]
    listed = pieces["actes_type_pj_list"]
    main, annex = _typology(listed, "99_DE"), _typology(listed, "22_AG")
    typed = megacte.call("PATCH", f"{doc}/externalData/type_piece", 200,
                         data={"type_pj[0]": main, "type_pj[1]": annex})
    assert typed["data"]["type_piece"] == "2 fichier(s) typé(s)"
    assert typed["data"]["type_acte"] == main and typed["data"]["type_pj"] == f'["{annex}"]'

    # MegActe's check_and_perform_action: read action_possible at .../action, then post
    assert "orientation" in megacte.call("GET", f"{doc}/action", 200)["action_possible"]
    assert megacte.call("POST", f"{doc}/action/orientation", 201)["result"] is True
    done = megacte.wait_state(id_e, id_d, ("termine",))
    assert done["last_action"]["action"] == "termine", done["last_action"]
    assert "annulation-tdt" in megacte.call("GET", f"{doc}/action", 200)["action_possible"]
    assert megacte.call("POST", f"{doc}/action/annulation-tdt", 201)["result"] is True
    cancelled = megacte.wait_state(id_e, id_d, ("annuler-tdt",))
    assert cancelled["last_action"]["action"] == "annuler-tdt", cancelled["last_action"]
    counts = megacte.call("GET", "/document/count", 200, params={"id_e": id_e,
                                                                  "type": "ls-actes"})
    assert counts[id_e]["flux"]["ls-actes"]["annuler-tdt"] >= 1  # as MegActe sums them
    listed_rows = megacte.call("GET", f"/entite/{id_e}/document?type=ls-actes", 200)
    assert [r["last_action"] for r in listed_rows if r["id_d"] == id_d] == ["annuler-tdt"]
    journal = megacte.call("GET", f"/journal?id_e={id_e}&id_d={id_d}", 200)
    assert {"creation", "orientation", "annulation-tdt"} <= {r["action"] for r in journal}
    _check_jeton(megacte, journal)


def _check_jeton(client: Pastell, journal: list[dict]) -> None:
    """A bus event's entry has the RFC 3161 reply of the checkpoint sealing it (once
    sealed: the sealer runs every few seconds); the door's own actions have none."""
    [door_action] = [r for r in journal if r["action"] == "creation"]
    event = next(r for r in journal if r["action"] == "submitted")
    assert client.call("GET", f"/journal/{event['id_j']}", 200) == event
    client.call("GET", f"/journal/{door_action['id_j']}/jeton", 404)
    deadline = time.monotonic() + 60
    while (got := client.http.get(f"/api/v2/journal/{event['id_j']}/jeton",
                                  headers=client.headers)).status_code == 404:
        assert time.monotonic() < deadline, got.text
        time.sleep(1)
    assert got.status_code == 200 and got.headers["content-type"] == \
        "application/timestamp-reply"
    info, _ = tst_info(parse_response(got.content))
    assert info["gen_time"].native is not None

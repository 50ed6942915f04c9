"""What else the incumbent's clients rely on: Basic authentication, the v1 ``*.php``
scripts and their quirks, the error body and codes, another entity's document, flux the
bus has no flow for, and idempotent creation."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from bus.runtime import Runtime
from bus.settings import Settings
from tests.pastell.support import CITY_A, CITY_B, Pastell, basic, bearer, make_callers
from workers.common.demo import minimal_pdf

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def callers(settings: Settings) -> dict[str, tuple[str, str]]:
    return make_callers(settings)


@pytest.fixture(scope="module")
def http(api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api, timeout=30) as client:
        yield client


def test_basic_authentication_and_refusals(http: httpx.Client, callers: dict) -> None:
    login, token = callers["city_a"]
    ok = http.get("/api/v2/entite", headers=basic(login, token))
    assert ok.status_code == 200 and [r["siren"] for r in ok.json()] == [CITY_A]
    assert ok.headers["content-type"] == "application/json; charset=utf-8"
    assert "\\u00e9" in ok.text  # "Démo" escaped as the incumbent prints it
    for headers in (basic(login, "wrong"), basic(callers["maarch"][0], token), {}):
        refused = http.get("/api/v2/entite", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Basic realm="API Pastell"'
        assert refused.json() == {"status": "error", "error-message": "Accès interdit"}


def test_another_entitys_document_answers_as_the_incumbent(http: httpx.Client,
                                                           callers: dict) -> None:
    maarch = Pastell(http, callers["maarch"][1])
    city_a = Pastell(http, callers["city_a"][1])
    id_b = maarch.entity_of(CITY_B)
    id_a = city_a.entity_of(CITY_A)
    id_d = maarch.call("POST", f"/entite/{id_b}/document", 201,
                       data={"type": "ls-document-pdf"})["id_d"]
    login = callers["city_a"][0]
    assert city_a.call("GET", f"/entite/{id_b}/document/{id_d}", 403) == {
        "status": "error",
        "error-message": f"Acces interdit id_e={id_b}, droit=entite:lecture,id_u={login}"}
    assert city_a.call("GET", f"/entite/{id_a}/document/{id_d}", 404) == {
        "status": "error",
        "error-message": f"Le document {id_d} n'appartient pas à l'entité {id_a}"}
    assert city_a.call("PATCH", f"/entite/{id_a}/document/{id_d}", 404,
                       data={"libelle": "x"})["status"] == "error"
    assert id_d not in {r["id_d"] for r in city_a.call("GET", f"/entite/{id_a}/document",
                                                       200)}
    assert city_a.call("GET", "/entite/999999", 404)["error-message"] == \
        "L'entité 999999 n'existe pas"


def test_unmapped_flux_and_refused_action(http: httpx.Client, callers: dict) -> None:
    city_a = Pastell(http, callers["city_a"][1])
    id_a = city_a.entity_of(CITY_A)
    login = callers["city_a"][0]
    assert city_a.call("POST", f"/entite/{id_a}/document", 403,
                       data={"type": "ls-mailsec"})["error-message"] == \
        f"Acces interdit id_e={id_a}, droit=ls-mailsec:edition,id_u={login}"
    id_d = city_a.call("POST", f"/entite/{id_a}/document", 201,
                       data={"type": "ls-document-pdf"})["id_d"]
    refused = city_a.call("POST", f"/entite/{id_a}/document/{id_d}/action/orientation", 400)
    assert refused["error-message"].startswith("L'action « orientation »  n'est pas permise :")
    assert city_a.call("GET", f"/entite/{id_a}/document/{id_d}/externalData/nope", 400) == {
        "status": "error", "error-message": "Type nope introuvable"}
    assert http.put("/api/v2/version", headers=bearer(callers["city_a"][1])
                    ).status_code == 405


def test_v1_scripts(http: httpx.Client, callers: dict) -> None:
    login, token = callers["city_a"]
    headers = basic(login, token)
    id_a = Pastell(http, token).entity_of(CITY_A)
    version = http.get("/api/version.php", headers=headers)
    assert version.status_code == 200 and isinstance(version.json()["version"], str)
    created = http.post("/api/create-document.php", headers=headers,
                        data={"id_e": id_a, "type": "ls-document-pdf"})
    assert created.status_code == 200, created.text
    id_d = created.json()["id_d"]
    # a v1 client sends ISO-8859-1
    body = f"id_e={id_a}&id_d={id_d}&libelle=Arr%EAt%E9".encode()
    patched = http.post("/api/modif-document.php", headers=headers | {
        "Content-Type": "application/x-www-form-urlencoded"}, content=body)
    assert patched.status_code == 200, patched.text
    assert patched.json()["content"]["data"]["libelle"] == "Arrêté"
    assert patched.json()["formulaire_ok"] == "0"  # every value a string
    detail = http.get("/api/detail-document.php", headers=headers,
                      params={"id_e": id_a, "id_d": id_d}).json()
    assert detail["info"]["titre"] == "Arrêté"
    pdf = minimal_pdf("Arrete v1")
    sent = http.post("/api/send-file.php", headers=headers, data={
        "id_e": id_a, "id_d": id_d, "field": "document", "file_name": "arrete.pdf"},
        files={"file_content": ("arrete.pdf", pdf, "application/pdf")})
    assert sent.status_code == 200, sent.text
    assert sent.json()["content"]["data"]["document"] == ["arrete.pdf"]
    assert "orientation" in sent.json()["content"]["action-possible"]  # v1's key
    got = http.get("/api/recuperation-fichier.php", headers=headers,
                   params={"id_e": id_a, "id_d": id_d, "field": "document"})
    assert got.status_code == 200 and got.content == pdf
    assert 'filename="arrete.pdf"' in got.headers["content-disposition"]
    listed = http.get("/api/list-document.php", headers=headers,
                      params={"id_e": id_a, "type": "ls-document-pdf"}).json()
    assert id_d in {r["id_d"] for r in listed} and all(
        isinstance(v, str) for r in listed for v in r.values())
    http.post("/api/modif-document.php", headers=headers,
              data={"id_e": id_a, "id_d": id_d, "libelle": ""})  # back to invalid
    refused = http.post("/api/action.php", headers=headers,
                        data={"id_e": id_a, "id_d": id_d, "action": "orientation"})
    assert refused.status_code == 200 and refused.json()["status"] == "error"
    done = http.post("/api/action.php", headers=headers,
                     data={"id_e": id_a, "id_d": id_d, "action": "supression"})
    assert done.status_code == 200 and done.json()["result"] == "1"
    missing = http.get("/api/detail-document.php", headers=headers,
                       params={"id_e": id_a, "id_d": id_d})
    assert missing.status_code == 404
    assert http.get("/api/nope.php", headers=headers).json()["error-message"] == \
        "Impossible de trouver le script nope.php"


def test_idempotency_key_answers_the_first_document(http: httpx.Client,
                                                    callers: dict) -> None:
    city_a = Pastell(http, callers["city_a"][1])
    id_a = city_a.entity_of(CITY_A)
    key = {"Idempotency-Key": f"courrier-{id_a}-42"}
    first = city_a.call("POST", f"/entite/{id_a}/document", 201,
                        data={"type": "ls-document-pdf"}, headers=key)
    again = city_a.call("POST", f"/entite/{id_a}/document", 201,
                        data={"type": "ls-document-pdf"}, headers=key)
    assert again["id_d"] == first["id_d"]
    other = city_a.call("POST", f"/entite/{id_a}/document", 201,
                        data={"type": "ls-document-pdf"})
    assert other["id_d"] != first["id_d"]


def test_chunks_files_several_details_counts_and_delete(http: httpx.Client, callers: dict,
                                                        settings: Settings) -> None:
    city_a = Pastell(http, callers["city_a"][1])
    id_a = city_a.entity_of(CITY_A)
    ids = [city_a.call("POST", f"/entite/{id_a}/document?type=ls-document-pdf", 201)["id_d"]
           for _ in range(2)]
    doc = f"/entite/{id_a}/document/{ids[0]}"
    content = minimal_pdf("Gros fichier") * 3
    parts = [content[:100], content[100:200], content[200:]]
    for number, part in enumerate(parts):
        got = http.post(f"/api/v2{doc}/chunk/document", headers=city_a.headers, data={
            "file_name": "gros.pdf", "chunk_number": str(number),
            "total_chunks": str(len(parts)), "total_size": str(len(content))},
            files={"file": ("blob", part)})
        assert got.status_code == (201 if number == len(parts) - 1 else 200), got.text
    assert got.json()["content"]["data"]["document"] == ["gros.pdf"]
    chunks = Runtime(settings).store.list_keys(f"pastell/chunks/{ids[0]}/")
    assert chunks == []  # the chunks waited in the object store, then went
    assert city_a.call("GET", f"{doc}/file/document", 200) == content
    received = city_a.call("GET", f"{doc}/file/document?receive=true", 200)
    assert received["file_name"] == "gros.pdf"
    assert base64.b64decode(received["file_content"]) == content
    city_a.call("GET", f"{doc}/file/document/1", 404)
    assert city_a.call("DELETE", f"{doc}/file/document", 200)["data"]["document"] == []

    several = city_a.call("GET", f"/entite/{id_a}/document", 200,
                          params=[("id_d[]", ids[0]), ("id_d[]", ids[1])])
    assert set(several) == set(ids) and several[ids[1]]["info"]["id_d"] == ids[1]
    counts = city_a.call("GET", "/document/count", 200,
                         params={"id_e": id_a, "type": "ls-document-pdf", "output": "simple"})
    assert counts["ls-document-pdf"]["creation"] >= 2
    rows = city_a.call("GET", f"/entite/{id_a}/document", 200,
                       params={"type": "ls-document-pdf", "lastetat": "creation"})
    assert {ids[1]} <= {r["id_d"] for r in rows} and rows[0]["siren"] == CITY_A
    deleted = http.delete(f"/api/v2/entite/{id_a}/document/{ids[1]}", headers=city_a.headers)
    assert deleted.status_code == 204 and deleted.content == b""
    city_a.call("GET", f"/entite/{id_a}/document/{ids[1]}", 404)


def test_entities_flux_and_connectors_read_only(http: httpx.Client, callers: dict) -> None:
    maarch = Pastell(http, callers["maarch"][1])
    id_b = maarch.entity_of(CITY_B)
    entity = maarch.call("GET", f"/entite/{id_b}", 200)
    assert entity["siren"] == CITY_B and entity["entite_mere"] != "0"
    assert entity["entite_fille"] == []
    flux = maarch.call("GET", "/flux", 200)
    assert flux["ls-actes"] == {"type": "Flux Généraux", "nom": "Actes (studio)"}
    assert "ls-mailsec" not in flux and "facture-cpp" not in flux
    assert flux["rh-bulletin-salaire"]["nom"] == "Bulletin de salaire"
    assert flux["facture-chorus-fournisseur"]["type"] == "Finances"  # as its definition
    fields = maarch.call("GET", "/flux/ls-actes", 200)
    assert fields["arrete"]["type"] == "file" and fields["objet"]["requis"] is True
    actions = maarch.call("GET", "/flux/ls-actes/action", 200)
    assert {"orientation", "annulation-tdt", "acquiter-tdt", "supression"} <= set(actions)
    assert maarch.call("GET", "/flux/nope", 404)["error-message"] == \
        "Le flux nope n'existe pas sur cette plateforme"
    links = maarch.call("GET", f"/entite/{id_b}/flux", 200, params={"flux": "ls-actes"})
    assert {(r["id_ce"], r["type"]) for r in links} >= {("s2low", "TdT")}
    [parapheur] = [c for c in maarch.call("GET", f"/entite/{id_b}/connecteur", 200)
                   if c["id_connecteur"] == "iparapheur"]
    detail = maarch.call("GET", f"/entite/{id_b}/connecteur/{parapheur['id_ce']}", 200)
    assert "action-possible" in detail and "action_possible" not in detail
    assert maarch.call("GET", f"/entite/{id_b}/connecteur/{parapheur['id_ce']}/externalData"
                              "/iparapheur_sous_type", 200) == ["signature"]
    assert maarch.call("GET", "/version/allo", 200)["produit"] == "Pastell"
    assert http.get("/api/rest/allo", headers=maarch.headers).json()["produit"] == "Pastell"

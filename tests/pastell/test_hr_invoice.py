"""The HR pack's and Chorus Pro's flux over ``/api/v2`` against the session's bus (city
A): a pay slip mailed to its agent, an individual HR decree filed in the agent's file,
an invoice deposited on Chorus Pro and followed until paid. Each is created, filled and
sent as an incumbent's client does, and completes in the bus; the agent's personal
data are nowhere in clear at rest, the door's own records included."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from bus.dev.launcher import Services
from bus.settings import Settings
from tests.pastell.support import CITY_A, Pastell, make_callers
from tests.privacy_scan import leaks
from workers.common.demo import minimal_pdf
from workers.finance.demo import DEMO_BUYER, DemoInvoice, tenant_party, ubl_xml

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def client(api: str, services: Services, settings: Settings) -> Iterator[Pastell]:
    with httpx.Client(base_url=api, timeout=60) as http:
        yield Pastell(http, make_callers(settings)["megacte"][1])


def _draft(client: Pastell, flux: str, fields: dict[str, str], files: dict[str, bytes]
           ) -> tuple[str, str]:
    """A new document of ``flux`` filled and with its files: (id_e, document path)."""
    id_e = client.entity_of(CITY_A)
    id_d = client.call("POST", f"/entite/{id_e}/document", 201, data={"type": flux})["id_d"]
    doc = f"/entite/{id_e}/document/{id_d}"
    client.call("PATCH", doc, 200, data=fields)
    for field, content in files.items():
        client.call("POST", f"{doc}/file/{field}", 201, files={
            "file_name": (None, f"{field}.bin"), "file": (f"{field}.bin", content)})
    return id_e, doc


def _done(client: Pastell, doc: str, action: str, final: str = "termine") -> dict:
    sent = client.call("POST", f"{doc}/action/{action}", 201)
    assert sent["result"] is True, sent
    id_e, id_d = doc.split("/")[2], doc.split("/")[4]
    done = client.wait_state(id_e, id_d, (final,), timeout=240)
    assert done["last_action"]["action"] == final, done["last_action"]
    return done


@pytest.mark.timeout(400)
def test_a_pay_slip_is_mailed_to_its_agent(client: Pastell, settings: Settings) -> None:
    tag = uuid.uuid4().hex[:8]
    email, surname = f"agent.{tag}@exemple.fr", f"Brossart{tag}"
    fields = {"titre_document": f"Bulletin {tag}", "matricule_agent": "P0042",
              "prenom_agent": "Jeanne", "nom_usage_agent": surname, "email_agent": email,
              "siret_collectivite": "21690091000011", "mois_bulletin": "11",
              "annee_bulletin": "2026"}
    id_e, doc = _draft(client, "rh-bulletin-salaire",
                       {k: v for k, v in fields.items() if k != "email_agent"},
                       {"document": minimal_pdf(f"Bulletin {tag}")})
    refused = client.http.post(f"/api/v2{doc}/action/orientation", headers=client.headers)
    assert refused.status_code == 400
    assert "Adresse e-mail de l'agent" in refused.json()["error-message"]
    client.call("PATCH", doc, 200, data={"email_agent": email})
    assert client.call("GET", doc, 200)["data"]["email_agent"] == email  # the caller's own
    done = _done(client, doc, "orientation")
    assert done["info"]["titre"] == f"Bulletin {tag}"
    journal = client.call("GET", f"/journal?id_e={id_e}&id_d={doc.split('/')[4]}", 200)
    assert {"creation", "orientation"} <= {r["action"] for r in journal}
    assert leaks(settings, [email, surname]) == []  # the door's drafts are sealed too


@pytest.mark.timeout(400)
def test_an_individual_hr_decree_is_signed_and_filed(client: Pastell) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    _, doc = _draft(client, "rh-document-individuel", {
        "titre_document": f"Temps partiel {tag}", "matricule_agent": "P0042",
        "nom_usage_agent": "Martin", "type_document": "mutation", "objet": "Temps partiel",
        "numero_de_lacte": f"RH{tag}", "date_de_lacte": time.strftime("%Y-%m-%d")},
        {"document": minimal_pdf(f"Arrete {tag}")})
    subjects = client.call("GET", f"{doc}/externalData/classification", 200)
    client.call("PATCH", doc, 200, data={"classification": "4.1" if "4.1" in subjects
                                         else sorted(subjects)[0]})
    refused = client.http.post(f"/api/v2{doc}/action/orientation", headers=client.headers)
    assert refused.status_code == 400 and "type_document" in refused.json()["error-message"]
    client.call("PATCH", doc, 200, data={"type_document": "temps-partiel"})
    done = _done(client, doc, "orientation")
    assert done["data"]["document_signe"]  # the authority's signature, then the agent file


@pytest.mark.timeout(400)
def test_an_invoice_is_deposited_on_chorus_pro_until_paid(client: Pastell) -> None:
    invoice = DemoInvoice(f"PST{time.time_ns() % 10**9}",
                          tenant_party(CITY_A, "Ville de Démo-sur-Rhône"), DEMO_BUYER)
    _, doc = _draft(client, "facture-chorus-fournisseur",
                    {"depot_type": "UPLOAD_API", "numero_facture": invoice.number},
                    {"fichier_facture_pdf": ubl_xml(invoice)})
    offered = client.call("GET", doc, 200)["action_possible"]
    assert "send-chorus" in offered
    done = _done(client, doc, "send-chorus")
    assert done["info"]["titre"] == invoice.number
    assert done["data"]["bus_partner-reply"]  # Chorus Pro's receipts and status history

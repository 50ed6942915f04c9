"""i-Parapheur v5 standard API: the client and the simulator hold the published contract."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors.errors import PermanentError
from connectors.iparapheur import bundle, premis
from connectors.iparapheur.client import IparapheurClient, UploadFile
from connectors.iparapheur.sim_state import DESK_ID, SUBTYPE_IDS, TENANT_ID, TYPE_ID
from connectors.iparapheur.simulator import IparapheurSimulator
from connectors.simulator import FailurePlan, SimulatorServer
from workers.common.demo import minimal_pdf

STD = "/api/standard/v1"
DESK = f"{STD}/tenant/{TENANT_ID}/desk/{DESK_ID}"
TOKEN = "/auth/realms/api/protocol/openid-connect/token"
PDF = minimal_pdf("Arrete")


@pytest.fixture()
def sim() -> Iterator[tuple[IparapheurSimulator, str]]:
    simulator = IparapheurSimulator(step_seconds=3600)
    server: SimulatorServer = simulator.serve()
    yield simulator, server.base_url
    server.stop()


def _client(url: str, **kw: object) -> IparapheurClient:
    opts = {"url": url, "tenant_id": TENANT_ID, "desk_id": DESK_ID, "username": "demat",
            "password": "demat", "timeout": 5} | kw
    return IparapheurClient.from_options(opts, var_dir=Path("."))


def _token(url: str) -> dict[str, str]:
    resp = httpx.post(url + TOKEN, data={"grant_type": "password", "client_id": "ipcore-web",
                                         "username": "demat", "password": "demat"})
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def _create(client: IparapheurClient, name: str) -> tuple[dict, bool]:
    return asyncio.run(client.create(name, [UploadFile("a.pdf", PDF, "application/pdf")]))


def test_premis_as_published_is_read_fail_safe() -> None:
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<premis xmlns="{premis.NS}" xmlns:xsi="{premis.XSI}" version="3.0">
  <object xsi:type="intellectualEntity">
    <significantProperties><significantPropertiesType>i_Parapheur_reserved_type
      </significantPropertiesType><significantPropertiesValue>ACTES</significantPropertiesValue>
    </significantProperties>
    <significantProperties><significantPropertiesType>i_Parapheur_reserved_subtype
      </significantPropertiesType><significantPropertiesValue>Deliberation
      </significantPropertiesValue></significantProperties>
    <significantProperties><significantPropertiesType>numero</significantPropertiesType>
      <significantPropertiesValue>2026-042</significantPropertiesValue></significantProperties>
    <originalName>Délibération 42</originalName>
    <futureNode>ignored</futureNode>
  </object>
  <object xsi:type="file"><significantProperties>
    <significantPropertiesType>i_Parapheur_reserved_mainDocument</significantPropertiesType>
    <significantPropertiesValue>true</significantPropertiesValue></significantProperties>
    <originalName>deliberation.pdf</originalName></object>
  <event><eventIdentifier><eventIdentifierType>taskId</eventIdentifierType>
    <eventIdentifierValue>t1</eventIdentifierValue></eventIdentifier><eventType>VISA</eventType>
    <eventDateTime>2026-01-31T11:19:32.725+0100</eventDateTime>
    <linkingAgentIdentifier><linkingAgentIdentifierType>userId</linkingAgentIdentifierType>
    <linkingAgentIdentifierValue>u1</linkingAgentIdentifierValue>
    <linkingAgentRole>Bureau du maire</linkingAgentRole></linkingAgentIdentifier></event>
  <event><eventIdentifier><eventIdentifierType>taskId</eventIdentifierType>
    <eventIdentifierValue>t2</eventIdentifierValue></eventIdentifier>
    <eventType>SIGNATURE</eventType><eventDateTime/></event>
  <event><eventIdentifier><eventIdentifierType>taskId</eventIdentifierType>
    <eventIdentifierValue/></eventIdentifier><eventType>NEW_ACTION_2030</eventType></event>
  <agent><agentIdentifier><agentIdentifierType>userId</agentIdentifierType>
    <agentIdentifierValue>u1</agentIdentifierValue></agentIdentifier>
    <agentName>Jean DUPONT</agentName></agent>
</premis>""".encode()
    doc = premis.parse(xml)
    assert (doc.name, doc.type, doc.subtype) == ("Délibération 42", "ACTES", "Deliberation")
    assert doc.metadata == {"numero": "2026-042"} and doc.files[0].main
    visa, current, upcoming = doc.events
    assert visa.performed and doc.agent(visa) == "Jean DUPONT" and visa.desk == "Bureau du maire"
    assert current.current and doc.current() == current and not upcoming.task_id
    assert doc.state == "PENDING"
    with pytest.raises(premis.PremisError, match="root element"):
        premis.parse(b"<folder/>")
    with pytest.raises(premis.PremisError, match="not an XML document"):
        premis.parse(b'{"name": "x"}')


def test_the_folder_part_the_client_sends_is_the_published_premis() -> None:
    xml = premis.draft("demat-1", "t-id", "s-id", [("a.pdf", True), ("b.txt", False)],
                       metadata={"k": "v"})
    root = premis.etree.fromstring(xml)
    assert root.tag == f"{{{premis.NS}}}premis" and root.get("version") == "3.0"
    kinds = [o.get(f"{{{premis.XSI}}}type") for o in root]
    assert kinds == ["intellectualEntity", "file", "file"]
    doc = premis.parse(xml)
    assert (doc.type, doc.subtype, doc.metadata) == ("t-id", "s-id", {"k": "v"})
    assert [(f.name, f.main) for f in doc.files] == [("a.pdf", True), ("b.txt", False)]
    assert doc.state == "DRAFT"


def test_lookup_scans_every_page_of_a_busy_desk(sim) -> None:
    simulator, url = sim
    client = _client(url, page_size=5)
    target, created = _create(client, "demat-target")
    assert created
    for i in range(23):  # the target ends on the last page (newest first)
        _create(client, f"demat-other-{i}")
    found = asyncio.run(client.lookup("demat-target"))
    assert found == target
    again, created = _create(client, "demat-target")
    assert not created and again["id"] == target["id"]
    assert simulator.created.count("demat-target") == 1
    page = httpx.get(url + f"{DESK}/DOWNSTREAM", headers=_token(url),
                     params={"page": 4, "size": 5, "sort": "CREATION_DATE,desc"}).json()
    assert page["totalElements"] == 24 and page["totalPages"] == 5 and page["last"]
    assert [f["name"] for f in page["content"]][-1] == "demat-target"
    assert len(page["content"]) == 4


def test_before_old_lookup_states_miss_a_started_folder(sim) -> None:
    """The old client looked in PENDING/FINISHED/REJECTED/DRAFT with ``searchTerm``: a
    folder sent on to the signers is in none of those lists of the bus desk."""
    _simulator, url = sim
    _create(_client(url), "demat-sent")
    for state in ("PENDING", "FINISHED", "REJECTED", "DRAFT"):
        body = httpx.get(url + f"{DESK}/{state}", headers=_token(url),
                         params={"searchTerm": "demat-sent", "size": 50}).json()
        assert body["content"] == []


def test_before_json_folder_part_and_internal_api_are_refused(sim) -> None:
    simulator, url = sim
    old = {"name": "demat-old", "typeId": "DEMAT", "subtypeId": "signature", "metadata": {},
           "visibility": "CONFIDENTIAL"}
    resp = httpx.post(url + f"{DESK}/folder", headers=_token(url), params={"autoStart": "true"},
                      files=[("folder", ("folder.json", json.dumps(old).encode(),
                                         "application/json")),
                             ("documents", ("a.pdf", PDF, "application/pdf"))])
    assert resp.status_code == 400
    body = resp.json()
    assert set(body) == {"timestamp", "status", "error", "message", "path"}
    assert body["status"] == 400 and "invalid PREMIS" in body["message"]
    assert simulator.folders == {}
    folder, _ = _create(_client(url), "demat-new")
    resp = httpx.get(url + f"/api/v1/tenant/{TENANT_ID}/folder/{folder['id']}",
                     headers=_token(url))
    assert resp.status_code == 404 and resp.json()["error"] == "Not Found"
    resp = httpx.get(url + f"/api/v1/tenant/{TENANT_ID}/folder/{folder['id']}/history",
                     headers=_token(url))
    assert resp.status_code == 404


def test_malformed_requests_get_the_server_refusals(sim) -> None:
    _simulator, url = sim
    auth = _token(url)
    part = premis.draft("x", TYPE_ID, "signature", [("a.pdf", True)])
    cases = [
        ([("documents", ("a.pdf", PDF, "application/pdf"))], "Required part 'folder'"),
        ([("folder", ("f.xml", part, "application/xml"))], "Required part 'documents'"),
        ([("folder", ("f.xml", part, "application/xml")),
          ("documents", ("other.pdf", PDF, "application/pdf"))], "do not match"),
        ([("folder", ("f.xml", premis.draft("x", TYPE_ID, "teleport", [("a.pdf", True)]),
                      "application/xml")),
          ("documents", ("a.pdf", PDF, "application/pdf"))], "unknown subtype 'teleport'"),
    ]
    for files, message in cases:
        resp = httpx.post(url + f"{DESK}/folder", headers=auth, files=files)
        assert resp.status_code == 400 and message in resp.json()["message"], resp.text
    for params in ({"sort": "name,asc"}, {"page": -1}, {"page": "first"}):
        assert httpx.get(url + f"{DESK}/FINISHED", headers=auth,
                         params=params).status_code == 400
    assert httpx.get(url + f"{DESK}/SIGNED", headers=auth).status_code == 400
    other_desk = f"{STD}/tenant/{TENANT_ID}/desk/not-mine/FINISHED"
    assert httpx.get(url + other_desk, headers=auth).status_code == 403


def test_token_required_refreshed_and_renewed(sim) -> None:
    simulator, url = sim
    resp = httpx.get(url + f"{STD}/tenant")
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"] == "Bearer"
    assert resp.content == b""
    bad = httpx.post(url + TOKEN, data={"grant_type": "password", "client_id": "other",
                                        "username": "demat", "password": "demat"})
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    client = _client(url)

    async def scenario() -> None:
        assert [t["id"] async for t in client.pages(f"{STD}/tenant")] == [TENANT_ID]
        [refresh] = simulator.refresh_tokens
        simulator.tokens.clear()  # the server forgets the access token: 401, refreshed
        assert [t["id"] async for t in client.pages(f"{STD}/tenant")] == [TENANT_ID]
        assert refresh not in simulator.refresh_tokens and simulator.tokens
        simulator.tokens.clear()
        simulator.refresh_tokens.clear()  # refresh refused too: a new password login
        assert [t["id"] async for t in client.pages(f"{STD}/tenant")] == [TENANT_ID]
        simulator.credentials = ("demat", "changed")
        simulator.tokens.clear()
        simulator.refresh_tokens.clear()
        with pytest.raises(PermanentError, match="authentication refused"):
            await client.summary("any")
        await client.aclose()

    asyncio.run(scenario())


def test_names_resolve_to_ids_and_the_premis_carries_ids(sim) -> None:
    _simulator, url = sim
    client = IparapheurClient.from_options(
        {"url": url, "tenant": "Démo", "desk": "Bus demat", "username": "demat",
         "password": "demat", "type": "DEMAT", "subtype": "visa-signature"}, var_dir=Path("."))
    folder, created = _create(client, "demat-by-name")
    assert created and client._ids[("subtype", TYPE_ID, "visa-signature")] == \
        SUBTYPE_IDS["visa-signature"]
    summary = asyncio.run(client.summary(folder["id"]))
    assert (summary.type, summary.subtype) == (TYPE_ID, SUBTYPE_IDS["visa-signature"])
    with pytest.raises(PermanentError, match="no desk of this user 'Accueil'"):
        asyncio.run(_client(url, desk_id="", desk="Accueil").desk())
    with pytest.raises(ValueError, match="desk_id"):
        IparapheurClient.from_options({"url": url, "username": "u", "tenant_id": "t"},
                                      var_dir=Path("."))


def test_draft_started_zip_and_pending_delete(sim) -> None:
    _simulator, url = sim
    client = _client(url)
    auth = _token(url)
    part = premis.draft("demat-draft", "DEMAT", "signature", [("a.pdf", True)])
    resp = httpx.post(url + f"{DESK}/folder", headers=auth, params={"autoStart": "false"},
                      files=[("folder", ("f.xml", part, "application/xml")),
                             ("documents", ("a.pdf", PDF, "application/pdf"))])
    assert resp.status_code == 201 and set(resp.json()) >= {"id", "name"}
    folder_id = resp.json()["id"]

    async def scenario() -> None:
        summary = await client.summary(folder_id)
        assert summary.state == "DRAFT" and summary.start_task() is not None
        await client.start(folder_id, summary, {"numero": "7"})
        summary = await client.summary(folder_id)
        assert summary.state == "PENDING" and summary.current().action == "SIGNATURE"
        assert summary.metadata["numero"] == "7"
        with pytest.raises(PermanentError, match="HTTP 403"):
            await client.delete(folder_id)
        _, pending = await client.download(folder_id)
        assert pending.documents == {"a.pdf": PDF} and pending.bordereau
        await client.aclose()

    asyncio.run(scenario())
    assert httpx.post(url + f"/_sim/act/{folder_id}").json()["state"] == "FINISHED"
    raw = httpx.get(url + f"{DESK}/folder/{folder_id}/zip", headers=auth).content
    done = bundle.read(raw)
    assert done.premis.state == "FINISHED" and done.documents["a.pdf"] != PDF
    assert asyncio.run(client.delete(folder_id)) and not asyncio.run(client.delete(folder_id))


def test_bundle_refuses_what_is_not_a_folder_export() -> None:
    with pytest.raises(bundle.BundleError, match="not a ZIP"):
        bundle.read(b"PK not really")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("Documents principaux/a.pdf", PDF)
    with pytest.raises(bundle.BundleError, match=r"no i_Parapheur_internal_premis\.xml"):
        bundle.read(out.getvalue())
    summary = premis.parse(premis.draft("f", "T", "S", [("a.pdf", True), ("b.txt", True)]))
    raw = bundle.write(summary, {"a.pdf": PDF}, {}, {}, b"%PDF-slip")
    with pytest.raises(bundle.BundleError, match=r"b\.txt missing"):
        bundle.read(raw)
    raw = bundle.write(summary, {"a.pdf": PDF, "b.txt": b"x"}, {"annexe.odt": b"o"},
                       {"b.txt.1.p7s": b"cms"}, b"%PDF-slip")
    parts = bundle.read(raw)
    assert parts.detached == {"b.txt": {"b.txt.1.p7s": b"cms"}}
    assert parts.annexes == {"annexe.odt": b"o"} and parts.bordereau == ("f_bordereau.pdf",
                                                                         b"%PDF-slip")


class _LostAnswerOnce(FailurePlan):
    """The next creation's answer is lost (the folder is created, the client times out)."""

    armed = True

    def draw(self) -> str | None:
        outcome, self.armed = ("timeout" if self.armed else None), False
        return outcome

    async def apply(self) -> None:  # other calls answer normally
        return None


def test_a_lost_creation_answer_is_asked_for_not_created_again(sim) -> None:
    simulator, url = sim
    simulator.failures = _LostAnswerOnce(timeout_seconds=2)
    folder, _ = _create(_client(url, timeout=1), "demat-lost-answer")
    [only] = simulator.folders.values()
    assert folder["id"] == only.id and simulator.created.count("demat-lost-answer") == 1

"""The bus's extras on the Pastell door: an entity's document actions pushed as
Server-Sent Events, and webhooks of shape ``pastell`` (no polling), Pastell-shaped."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from bus.dev.launcher import Services, wait_until
from bus.identity import IdentityStore
from bus.runtime import Runtime
from bus.settings import Settings
from bus.webhooks.signing import verify
from tests.pastell.support import CITY_A, Pastell, bearer, form_body, make_callers
from tests.webhooks.receiver import Receiver
from workers.common.demo import minimal_pdf

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def http(api: str, services: Services) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api, timeout=30) as client:
        yield client


def _listen(api: str, token: str, id_e: str, found: list[dict], opened: threading.Event,
            until: float) -> None:
    with httpx.Client(base_url=api, timeout=httpx.Timeout(5, read=30)) as client, \
            client.stream("GET", f"/api/v2/entite/{id_e}/events", headers=bearer(token)) as got:
        assert got.status_code == 200
        for line in got.iter_lines():
            opened.set()  # the first line (a heartbeat) comes once the stream is positioned
            if line.startswith("data: "):
                found.append(json.loads(line[6:]))
                if found[-1]["action"] == "termine":
                    return
            if time.monotonic() > until:  # heartbeats come every 15 s at least
                return


def test_document_actions_are_pushed(api: str, http: httpx.Client, settings: Settings
                                     ) -> None:
    _, token = make_callers(settings)["megacte"]  # a reader of city A
    client = Pastell(http, token)
    id_e = client.entity_of(CITY_A)
    found: list[dict] = []
    opened = threading.Event()
    listener = threading.Thread(target=_listen, args=(api, token, id_e, found, opened,
                                                      time.monotonic() + 60), daemon=True)
    listener.start()
    assert opened.wait(30)
    id_d = client.call("POST", f"/entite/{id_e}/document", 201,
                       data={"type": "ls-document-pdf"})["id_d"]
    doc = f"/entite/{id_e}/document/{id_d}"
    client.call("PATCH", doc, 200, data={"libelle": "Note poussée"})
    client.call("POST", f"{doc}/file/document", 201, **form_body({
        "file_name": "note.pdf", "file_content": minimal_pdf("Note")}))
    client.call("POST", f"{doc}/action/orientation", 201)
    listener.join(90)
    mine = [f for f in found if f["id_d"] == id_d]
    assert mine and mine[-1]["action"] == "termine", found
    assert set(mine[-1]) == {"id_d", "id_e", "flux", "action", "message", "date"}
    assert mine[-1]["id_e"] == id_e and mine[-1]["flux"] == "ls-document-pdf"


def _admin_token(settings: Settings) -> str:
    ids = IdentityStore.of(Runtime(settings))
    login = f"hooks-{time.time_ns() % 10**9}"
    ids.add_user(login, CITY_A, "admin")
    return ids.create_token(login, name="pastell webhooks")[0]


def _send_note(client: Pastell, id_e: str, title: str) -> str:
    id_d = client.call("POST", f"/entite/{id_e}/document", 201,
                       data={"type": "ls-document-pdf"})["id_d"]
    doc = f"/entite/{id_e}/document/{id_d}"
    client.call("PATCH", doc, 200, data={"libelle": title})
    client.call("POST", f"{doc}/file/document", 201, **form_body({
        "file_name": "note.pdf", "file_content": minimal_pdf(title)}))
    client.call("POST", f"{doc}/action/orientation", 201)
    return id_d


def test_pastell_shaped_webhooks_carry_what_a_client_polls_for(
        http: httpx.Client, settings: Settings) -> None:
    receiver = Receiver()
    receiver.up()
    try:
        made = http.post("/v1/webhooks", headers=bearer(_admin_token(settings)), json={
            "tenant": CITY_A, "url": receiver.url, "events": ["document.*", "step.done"],
            "shape": "pastell"})
        assert made.status_code == 201, made.text
        sub = made.json()
        assert sub["shape"] == "pastell"
        bad = http.post("/v1/webhooks", headers=bearer(_admin_token(settings)), json={
            "tenant": CITY_A, "url": receiver.url, "events": ["*"], "shape": "soap"})
        assert bad.status_code == 422 and "shape" in bad.text
        time.sleep(3)  # the webhooks service re-reads subscriptions every 2 s
        client = Pastell(http, make_callers(settings)["megacte"][1])
        id_e = client.entity_of(CITY_A)
        id_d = _send_note(client, id_e, "Note par webhook")

        def bodies() -> list[dict]:
            return [json.loads(r.body) for r in list(receiver.accepted)]

        assert wait_until(lambda: any(b["id_d"] == id_d and b["last_action"]["action"]
                                      == "termine" for b in bodies()), 120), bodies()
        mine = [b for b in bodies() if b["id_d"] == id_d]
        assert all(set(b) == {"id", "event", "id_e", "id_d", "type", "titre",
                              "last_action"} for b in mine), mine
        assert {b["id_e"] for b in mine} == {id_e} and {b["type"] for b in mine} == {
            "ls-document-pdf"} and {b["titre"] for b in mine} == {"Note par webhook"}
        assert mine[-1]["event"] == "document.completed"
        assert set(mine[-1]["last_action"]) == {"action", "message", "date"}
        polled = client.call("GET", f"/entite/{id_e}/document/{id_d}", 200)
        assert polled["last_action"]["action"] == mine[-1]["last_action"]["action"]
        for got in list(receiver.accepted):  # signed as every webhook is
            assert verify(sub["secret"], got.headers, got.body, now=int(got.at))
    finally:
        receiver.down()

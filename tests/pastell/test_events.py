"""The bus's extra on the Pastell door: an entity's document actions pushed as
Server-Sent Events (no polling), Pastell-shaped."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from bus.dev.launcher import Services
from bus.settings import Settings
from tests.pastell.support import CITY_A, Pastell, bearer, form_body, make_callers
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

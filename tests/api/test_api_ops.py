"""Operators' and archivists' routes on the real embedded stack: dead letters listed,
replayed and discarded within one tenant with the caller journaled as the actor; an acte
cancelled; the journal verified per tenant; a proof bundle downloaded and checked."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bus.dev.launcher import wait_until
from bus.identity import IdentityStore
from bus.objectstore import ObjectStore
from bus.runtime import Runtime
from bus.settings import Settings
from tests.api.ops_support import auth, dead_letters, finished, submit_acte
from tests.tamper import flip, restore
from workers.common.demo import minimal_pdf

pytestmark = pytest.mark.stack
CITY_A, CITY_B = "216900910", "214502494"


@pytest.fixture(scope="module")
def who(settings: Settings) -> dict[str, dict[str, str]]:
    """Per case: a token and the actor the journal names for it."""
    runtime = Runtime(settings)
    ids = IdentityStore.of(runtime)
    tag = uuid.uuid4().hex[:6]
    found = {}
    for case, tenant, role in (("producer", CITY_A, "producer"), ("operator", CITY_A, "operator"),
                               ("archivist", CITY_A, "archivist"),
                               ("producer_b", CITY_B, "producer"),
                               ("operator_b", CITY_B, "operator"),
                               ("archivist_b", CITY_B, "archivist")):
        login = f"ops-{case.replace('_', '-')}-{tag}"
        ids.add_user(login, tenant, role)
        secret, record = ids.create_token(login, name=case)
        found[case] = {"token": secret, "actor": f"{login} (token {record['id']})",
                       "login": login}
    return found


@pytest.fixture(scope="module")
def http(api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api, timeout=60) as client:
        yield client


def _as(who: dict[str, dict[str, str]], case: str) -> dict[str, str]:
    return auth(who[case]["token"])


def _journal(http: httpx.Client, who: dict, doc_id: str) -> list[dict]:
    got = http.get(f"/v1/documents/{doc_id}/journal", headers=_as(who, "archivist"))
    assert got.status_code == 200, got.text
    return got.json()["events"]


def _event(http: httpx.Client, who: dict, doc_id: str, kind: str, dlq_id: str) -> dict:
    """The journal event ``kind`` about dead letter ``dlq_id`` (the index may lag)."""
    def found() -> list[dict]:
        return [e for e in _journal(http, who, doc_id)
                if e["type"] == kind and e["detail"].get("dlq_id") == dlq_id]

    assert wait_until(lambda: bool(found()), 60), f"no {kind} event for {dlq_id}"
    return found()[0]


@pytest.mark.timeout(900)
def test_operator_of_a_acts_on_a_letters_and_b_sees_none(http: httpx.Client, who: dict,
                                                         services: Any) -> None:
    op, op_b = _as(who, "operator"), _as(who, "operator_b")
    replayed, discarded, kept = dead_letters(http, who["producer"]["token"],
                                             who["operator"]["token"], CITY_A, 3)
    mine = {replayed["id"], discarded["id"], kept["id"]}
    shown = http.get(f"/v1/dead-letters/{replayed['id']}", headers=op)
    assert shown.status_code == 200, shown.text
    assert (shown.json()["tenant"], shown.json()["flow"], shown.json()["step"]) == (
        CITY_A, "acte", "acknowledgement")
    assert shown.json()["source"]["topic"] and shown.json()["status"] == "open"

    # tenant B's operator: none of them, whichever way it asks
    listed = http.get("/v1/dead-letters", headers=op_b, params={"status": "all"})
    assert listed.status_code == 200 and not mine & {r["id"] for r in listed.json()["dead_letters"]}
    assert all(r["tenant"] == CITY_B for r in listed.json()["dead_letters"])
    assert http.get("/v1/dead-letters", headers=op_b, params={"tenant": CITY_A}).status_code == 403
    assert http.get(f"/v1/dead-letters/{replayed['id']}", headers=op_b).status_code == 404
    for action, body in (("replay", {"ids": [replayed["id"]]}),
                         ("discard", {"ids": [replayed["id"]], "reason": "not mine"})):
        got = http.post(f"/v1/dead-letters/{action}", headers=op_b, json=body)
        assert got.status_code == 404 and replayed["id"] not in got.text, got.text
    everything = http.post("/v1/dead-letters/replay", headers=op_b,
                           json={"filters": {}, "dry_run": True})
    assert everything.status_code == 200
    assert not mine & {x["id"] for x in everything.json()["letters"]}
    # an archivist of A reads them but may not replay
    refused = http.post("/v1/dead-letters/replay", headers=_as(who, "archivist"),
                        json={"ids": [replayed["id"]]})
    assert refused.status_code == 403 and refused.json()["error"]["field"] == "Authorization"

    # dry runs, by ids and by filters, change nothing
    dry = http.post("/v1/dead-letters/replay", headers=op,
                    json={"ids": [replayed["id"], discarded["id"]], "dry_run": True})
    assert dry.status_code == 200 and dry.json()["count"] == 2 and dry.json()["dry_run"]
    by_filters = http.post("/v1/dead-letters/replay", headers=op, json={
        "filters": {"tenant": CITY_A, "flow": "acte", "step": "acknowledgement"},
        "dry_run": True})
    assert by_filters.status_code == 200
    assert mine <= {x["id"] for x in by_filters.json()["letters"]}
    time.sleep(3)  # what a replay would have journaled by now
    for letter in (replayed, discarded, kept):
        assert http.get(f"/v1/dead-letters/{letter['id']}", headers=op).json()["status"] == "open"
        assert not [e for e in _journal(http, who, letter["doc_id"])
                    if e["type"] in ("replayed", "discarded", "replay-refused")]

    _bad_requests(http, op, replayed["id"])

    # replay one, discard one: journaled with the caller's identity
    done = http.post("/v1/dead-letters/replay", headers=op, json={"ids": [replayed["id"]]})
    assert done.status_code == 200, done.text
    assert done.json()["count"] == 1 and done.json()["actor"] == who["operator"]["actor"]
    event = _event(http, who, replayed["doc_id"], "replayed", replayed["id"])
    assert event["actor"] == who["operator"]["actor"]
    gone = http.post("/v1/dead-letters/discard", headers=op,
                     json={"ids": [discarded["id"]], "reason": "doublon de l'acte"})
    assert gone.status_code == 200, gone.text
    event = _event(http, who, discarded["doc_id"], "discarded", discarded["id"])
    assert event["actor"] == who["operator"]["actor"]
    assert event["detail"]["reason"] == "doublon de l'acte"

    def status(letter: dict) -> dict:
        return http.get(f"/v1/dead-letters/{letter['id']}", headers=op).json()

    assert wait_until(lambda: status(replayed)["status"] == "replayed", 30)
    assert wait_until(lambda: status(discarded)["status"] == "discarded", 30)
    assert status(discarded)["status_by"] == who["operator"]["actor"]
    assert status(discarded)["status_reason"] == "doublon de l'acte"
    assert status(kept)["status"] == "open"
    again = http.post("/v1/dead-letters/replay", headers=op, json={"ids": [replayed["id"]]})
    assert again.status_code == 409 and "already replayed" in again.json()["error"]["message"]
    closed = http.get("/v1/dead-letters", headers=op, params={"status": "discarded",
                                                                "flow": "acte"})
    assert discarded["id"] in {r["id"] for r in closed.json()["dead_letters"]}


def _bad_requests(http: httpx.Client, op: dict[str, str], dlq_id: str) -> None:
    """Each bad request names its field and changes nothing."""
    cases = [
        ("replay", {"ids": [dlq_id], "filters": {}}, "ids"),
        ("replay", {"dry_run": True}, "ids"),
        ("replay", {"ids": [dlq_id], "from_step": "nope", "dry_run": True}, "from_step"),
        ("replay", {"ids": [dlq_id], "rate": 0}, "rate"),
        ("replay", {"filters": {"since": "yesterday"}, "dry_run": True}, "filters.since"),
        ("discard", {"ids": [dlq_id]}, "reason"),
        ("discard", {"ids": [dlq_id], "reason": "   "}, "reason"),
        ("discard", {"ids": ["no-such-letter"], "reason": "x"}, "ids[0]"),
    ]
    for action, body, field in cases:
        got = http.post(f"/v1/dead-letters/{action}", headers=op, json=body)
        assert got.status_code in (404, 422), (body, got.status_code, got.text)
        assert got.json()["error"]["field"] == field, (body, got.json())
    listed = http.get("/v1/dead-letters", headers=op, params={"since": "soon"})
    assert listed.status_code == 422 and listed.json()["error"]["field"] == "since"


@pytest.mark.timeout(600)
def test_an_acte_cancelled_through_the_api(http: httpx.Client, who: dict,
                                           services: Any) -> None:
    acte = submit_acte(http, who["producer"]["token"], CITY_A)
    assert finished(http, who["producer"]["token"], acte)["state"] == "completed"
    url = f"/v1/actes/{acte}"
    assert http.get(f"{url}/letters", headers=_as(who, "operator")).json() == {"letters": []}
    assert http.post(f"{url}/cancel", headers=_as(who, "operator_b")).status_code == 404
    assert http.get(f"{url}/letters", headers=_as(who, "operator_b")).status_code == 404
    for case in ("archivist", "producer"):  # they see it, but may not cancel
        assert http.post(f"{url}/cancel", headers=_as(who, case)).status_code == 403
    answer = http.post(f"{url}/reply", headers=_as(who, "producer"), files=[
        ("files", ("reponse.pdf", minimal_pdf("Réponse"), "application/pdf"))])
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "metadata.letter_id"

    sent = http.post(f"{url}/cancel", headers=_as(who, "operator"),
                     json={"reason": "erreur matérielle"})
    assert sent.status_code == 202, sent.text
    followup = sent.json()["id"]
    assert sent.headers["Location"] == f"/v1/documents/{followup}"
    state = finished(http, who["operator"]["token"], followup, 300)
    assert state["state"] == "completed", state
    assert state["flow"] == "acte-followup" and state["metadata"]["action"] == "cancel"
    assert state["metadata"]["acte_document"] == acte
    files = http.get(f"/v1/documents/{followup}/artefacts", headers=_as(who, "operator"))
    names = {f["name"] for f in files.json()["files"]}
    assert any(n.endswith("-6-2_0.xml") for n in names), names  # the ARAnnulation
    request = next(f for f in files.json()["files"] if f["kind"] == "submitted")
    asked = json.loads(http.get(request["href"], headers=_as(who, "operator")).content)
    assert (asked["acte_document"], asked["reason"]) == (acte, "erreur matérielle")
    submitted = next(e for e in _journal(http, who, followup) if e["type"] == "submitted")
    assert submitted["detail"]["producer"] == f"api:{who['operator']['login']}"
    not_acte = http.get(f"/v1/actes/{followup}/letters", headers=_as(who, "operator"))
    assert not_acte.status_code == 404


def _verified(http: httpx.Client, headers: dict[str, str], after: datetime,
              tenant: str | None = None) -> dict:
    """A verification report started after ``after`` (a finished one is kept a minute)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        got = http.get("/v1/audit/verify", headers=headers,
                       params={"tenant": tenant} if tenant else {})
        assert got.status_code in (200, 202), got.text
        if got.status_code == 200 and datetime.fromisoformat(got.json()["started_at"]) > after:
            return got.json()
        time.sleep(float(got.headers.get("Retry-After", 5)))
    raise AssertionError("no fresh verification report in 300 s")


@pytest.mark.timeout(900)
def test_audit_verify_is_per_tenant_and_the_proof_bundle_verifies(
        http: httpx.Client, who: dict, settings: Settings, services: Any,
        tmp_path: Path) -> None:
    sent = http.post("/v1/documents", headers=_as(who, "producer_b"), data={
        "flow": "document", "tenant": CITY_B, "metadata": '{"title": "Note B"}'},
        files=[("files", ("note.pdf", minimal_pdf(f"B {uuid.uuid4()}"), "application/pdf"))])
    assert sent.status_code == 202, sent.text
    doc_b = finished(http, who["producer_b"]["token"], sent.json()["id"])
    assert doc_b["state"] == "completed", doc_b
    assert http.get("/v1/audit/verify", headers=_as(who, "operator")).status_code == 403
    assert http.get("/v1/audit/verify", headers=_as(who, "archivist"),
                    params={"tenant": CITY_B}).status_code == 403

    # one flipped byte in a stored file of B: B's archivist is told, A's is not
    store = ObjectStore(settings)
    files = http.get(f"/v1/documents/{doc_b['id']}/artefacts", headers=_as(who, "producer_b"))
    sha = next(f["sha256"] for f in files.json()["files"] if f["kind"] == "submitted")
    key = store.file_key(CITY_B, sha)
    original = flip(store.client, store.bucket, key)
    flipped_at = datetime.now().astimezone()
    try:
        report_b = _verified(http, _as(who, "archivist_b"), flipped_at)
        report_a = _verified(http, _as(who, "archivist"), flipped_at)
    finally:
        restore(store.client, store.bucket, key, original)
    assert report_b["tenants"] == [CITY_B] and report_b["status"] == "problems"
    assert any(key in p["where"] for p in report_b["problems"]), report_b["problems"]
    assert report_a["tenants"] == [CITY_A], report_a
    assert not any(CITY_B in p["where"] or doc_b["id"] in p["where"]
                   for p in report_a["problems"]), report_a["problems"]
    assert report_a["counts"]["checkpoints"] >= 1 and report_a["counts"]["files"] >= 1
    assert doc_b["id"] not in json.dumps(report_a)

    _proof(http, who, tmp_path)


def _proof(http: httpx.Client, who: dict, tmp_path: Path) -> None:
    """A's document's proof bundle: downloaded by A's archivist only, and it verifies."""
    sent = http.post("/v1/documents", headers=_as(who, "producer"), data={
        "flow": "document", "tenant": CITY_A, "metadata": '{"title": "Preuve"}'},
        files=[("files", ("preuve.pdf", minimal_pdf(f"A {uuid.uuid4()}"), "application/pdf"))])
    doc = sent.json()["id"]
    assert finished(http, who["producer"]["token"], doc)["state"] == "completed"
    url = f"/v1/documents/{doc}/proof"
    assert http.get(url, headers=_as(who, "archivist_b")).status_code == 404
    assert http.get(url, headers=_as(who, "operator")).status_code == 403

    got: list[httpx.Response] = []

    def sealed() -> bool:  # 409 before any checkpoint; later events come unsealed at first
        got[:] = [http.get(url, headers=_as(who, "archivist"))]
        if got[0].status_code != 200:
            return False
        bundle = zipfile.ZipFile(io.BytesIO(got[0].content))
        return "unsealed-events.jsonl" not in bundle.namelist() and \
            b'"completed"' in bundle.read("events.jsonl")

    assert wait_until(sealed, 120, 2), got[0].text[:300]
    assert got[0].headers["content-type"] == "application/zip"
    zipfile.ZipFile(io.BytesIO(got[0].content)).extractall(tmp_path / "bundle")
    folder = tmp_path / "bundle"
    assert {"events.jsonl", "proofs.json", "checkpoint.json", "checkpoint.sig",
            "checkpoint.tsr", "README.md"} <= {p.name for p in folder.iterdir()}
    assert doc.encode() in (folder / "events.jsonl").read_bytes()
    check = subprocess.run([sys.executable, "verify_inclusion.py"], cwd=folder,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

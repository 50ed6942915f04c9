"""The hostile corpus through the HTTP API (``POST /v1/documents``) on the embedded
stack: a refusal at the door is a 422 naming the field; one read in the file is a
``rejected`` document naming it; a good document submitted right after completes."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from bus.identity import IdentityStore
from bus.runtime import Runtime
from bus.settings import Settings
from tests.api.ops_support import auth, finished
from tests.hostile.corpus import CITY_A, Case, base, load_cases

pytestmark = pytest.mark.stack
# multipart carries these as the form gives them (httpx percent-escapes CR, LF and quotes
# in a file name, so those cases are the SDK's)
AT_THE_DOOR = ("file-name-traversal", "file-name-slash", "file-name-backslash",
               "file-name-dotdot", "file-name-inner-dotdot", "file-name-bidi",
               "file-name-256-bytes-utf8", "file-name-300-chars", "file-name-only-dots-spaces",
               "title-newline", "title-ansi-escape", "title-bidi-override", "description-nul",
               "acte-number-newline", "acte-number-fullwidth", "acte-classification-arabic-indic",
               "acte-subject-osc-escape", "employer-siret-fullwidth", "email-crlf-header",
               "net-amount-arabic-indic", "hr-agent-email-crlf", "invoice-in-from-a-producer")
AT_INTAKE = ("employer-siret-other-tenant", "pes-idcoll-other-tenant",
             "invoice-supplier-outsider")
CASES = {c.id: c for c in load_cases()}


@pytest.fixture(scope="module")
def producer(settings: Settings) -> str:
    runtime = Runtime(settings)
    ids = IdentityStore.of(runtime)
    login = f"hostile-{uuid.uuid4().hex[:6]}"
    ids.add_user(login, CITY_A, "producer")
    return ids.create_token(login, name="hostile")[0]


@pytest.fixture(scope="module")
def http(api: str) -> httpx.Client:
    with httpx.Client(base_url=api, timeout=60) as client:
        yield client


def _post(http: httpx.Client, token: str, case: Case) -> httpx.Response:
    return http.post("/v1/documents", headers=auth(token), data={
        "flow": case.flow, "tenant": case.tenant, "metadata": json.dumps(case.metadata)},
        files=[("files", (f.name, f.data, "application/octet-stream")) for f in case.files])


@pytest.mark.parametrize("case_id", AT_THE_DOOR)
def test_refused_at_the_door_naming_the_field(http: httpx.Client, producer: str,
                                              services: object, case_id: str) -> None:
    case = CASES[case_id]
    got = _post(http, producer, case)
    assert got.status_code == 422, got.text
    assert got.json()["error"]["field"] == case.field, got.text
    assert "Traceback" not in got.text and "/tmp" not in got.text


def test_identities_in_the_file_are_rejected_at_intake_then_a_good_one_completes(
        http: httpx.Client, producer: str, services: object) -> None:
    sent = {}
    for case_id in AT_INTAKE:
        got = _post(http, producer, CASES[case_id])
        assert got.status_code == 202, got.text
        sent[case_id] = got.json()["id"]
    for case_id, doc_id in sent.items():
        state = finished(http, producer, doc_id, timeout=120)
        assert state["state"] == "rejected", (case_id, state)
        assert state["error"]["field"] == CASES[case_id].field, (case_id, state["error"])
    meta, files = base("document", CITY_A)
    good = Case("good", "document", CITY_A, meta | {"title": "Après le corpus"}, files,
                None, "")
    got = _post(http, producer, good)
    assert got.status_code == 202, got.text
    assert finished(http, producer, got.json()["id"])["state"] == "completed"

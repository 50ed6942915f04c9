"""The HTTP API on the real embedded stack: submit a PDF, follow it, download, export;
idempotency; and the isolation matrix over every route of ``/openapi.json``."""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bus.dev.launcher import wait_until
from bus.identity import ROLES, IdentityStore
from bus.receipts import Receipts
from bus.runtime import Runtime
from bus.sessions import SessionStore
from bus.settings import Settings
from schemas.envelope import Envelope, FileRef
from tests.api.ops_support import call_ops_route, dead_letters, finished, submit_acte
from tests.api.uploads_support import call_push_route, call_upload_route, remove_matrix_hooks
from workers.common.demo import minimal_pdf

pytestmark = pytest.mark.stack
CITY_A, CITY_B, SYNDICATE = "216900910", "214502494", "200000008"
MARKER = f"secret-of-a-{uuid.uuid4().hex[:8]}"  # in A's document only
# routes whose body names objects of A (dead letters): 404 outside, as a path id would be
NAMED = {"/v1/dead-letters/replay", "/v1/dead-letters/discard"}
# routes that answer 403 to a caller holding their permission on no tenant
SCOPED = {"/v1/events", "/v1/audit/verify"}
# the matrix's acte has no prefecture letter: an answer reaches the flow's intake check,
# which refuses it naming the letter (an answer needs a letter to answer)
REFUSED_WHEN_ALLOWED = {"/v1/actes/{doc_id}/reply": (422, "metadata.letter_id")}


@pytest.fixture(scope="module")
def tokens(settings: Settings) -> dict[str, str]:
    """One token per case, on the session stack's object store."""
    runtime = Runtime(settings)
    ids = IdentityStore.of(runtime)
    tag = uuid.uuid4().hex[:6]
    grants = {"producer": (CITY_A, "producer"), "producer2": (CITY_A, "producer"),
              "operator": (CITY_A, "operator"), "archivist": (CITY_A, "archivist"),
              "admin": (CITY_A, "admin"), "other": (CITY_B, "admin"),
              "syndicate": (SYNDICATE, "admin")}
    found = {}
    for case, (tenant, role) in grants.items():
        ids.add_user(f"{case}-{tag}", tenant, role)
        found[case] = ids.create_token(f"{case}-{tag}", name=case)[0]
    found["revoked"], record = ids.create_token(f"admin-{tag}")
    ids.revoke(record["id"])
    found["expired"], record = ids.create_token(
        f"admin-{tag}", expires=datetime.now(UTC) + timedelta(hours=1))
    record["expires_at"] = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    ids.records.put_token(record)
    return found


@pytest.fixture(scope="module")
def http(api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api, timeout=30) as client:
        yield client


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _submit(http: httpx.Client, token: str | None, *, tenant: str = CITY_A,
            key: str | None = None, text: str = "Lettre", title: str = MARKER
            ) -> httpx.Response:
    headers = _auth(token) | ({"Idempotency-Key": key} if key else {})
    return http.post("/v1/documents", headers=headers, data={
        "flow": "document", "tenant": tenant, "metadata": f'{{"title": "{title}"}}'},
        files=[("files", ("lettre.pdf", minimal_pdf(text), "application/pdf"))])


def _follow(http: httpx.Client, token: str, doc_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = http.get(f"/v1/documents/{doc_id}", headers=_auth(token))
        if got.status_code == 200 and got.json()["state"] in ("completed", "error",
                                                              "rejected"):
            return got.json()
        time.sleep(0.5)
    raise AssertionError(f"{doc_id} did not finish in {timeout} s")


@pytest.fixture(scope="module")
def doc_a(http: httpx.Client, tokens: dict[str, str], services: Any) -> dict[str, Any]:
    """A document of city A, submitted by its producer and completed."""
    sent = _submit(http, tokens["producer"], text=f"API {uuid.uuid4()}")
    assert sent.status_code == 202, sent.text
    doc_id = sent.json()["id"]
    assert sent.headers["Location"] == f"/v1/documents/{doc_id}"
    state = _follow(http, tokens["producer"], doc_id)
    assert state["state"] == "completed", state
    files = http.get(f"/v1/documents/{doc_id}/artefacts", headers=_auth(tokens["producer"]))
    assert files.status_code == 200
    return {"id": doc_id, "files": files.json()["files"]}


@pytest.fixture(scope="module")
def ops_a(http: httpx.Client, tokens: dict[str, str], services: Any) -> dict[str, str]:
    """Objects of city A for the operators' and archivists' routes: two dead letters
    and an acknowledged acte, sent by A's producer."""
    acte = submit_acte(http, tokens["producer"], CITY_A)
    letter, discarded = dead_letters(http, tokens["producer"], tokens["operator"], CITY_A, 2)
    assert finished(http, tokens["producer"], acte)["state"] == "completed"
    return {"letter": letter["id"], "discarded": discarded["id"], "acte": acte,
            "letter_doc": letter["doc_id"], "discarded_doc": discarded["doc_id"]}


def test_submit_follow_download_and_export(http: httpx.Client, tokens: dict[str, str],
                                          doc_a: dict[str, Any], settings: Settings) -> None:
    main = next(f for f in doc_a["files"] if f["kind"] == "submitted")
    got = http.get(main["href"], headers=_auth(tokens["producer"]))
    assert got.status_code == 200 and got.content.startswith(b"%PDF")
    assert len(got.content) == main["size"]
    assert got.headers["content-type"] == "application/pdf"
    export = http.get(f"/v1/documents/{doc_a['id']}/export", headers=_auth(tokens["archivist"]))
    assert export.status_code == 200, export.text
    names = zipfile.ZipFile(io.BytesIO(export.content)).namelist()
    assert "manifest.json" in names and "files/lettre.pdf" in names

    def journal() -> list[dict]:  # the index follows the journal topic: it may lag a little
        got = http.get(f"/v1/documents/{doc_a['id']}/journal", headers=_auth(tokens["archivist"]))
        assert got.status_code == 200
        return got.json()["events"]

    assert wait_until(lambda: journal() and journal()[-1]["type"] == "completed", 30)
    assert [e["seq"] for e in journal()] == sorted(e["seq"] for e in journal())
    submitted = next(e for e in journal() if e["type"] == "submitted")
    assert submitted["detail"]["producer"].startswith("api:producer-")  # who sent it
    assert submitted["actor"].startswith("producer-") and "(token " in submitted["actor"]

    def found() -> set[str]:
        got = http.get("/v1/documents", params={"tenant": CITY_A, "state": "completed"},
                       headers=_auth(tokens["operator"]))
        return {d["id"] for d in got.json()["documents"]}

    assert wait_until(lambda: doc_a["id"] in found(), 30)
    receipts = Receipts(Runtime(settings).database)
    receipts.prune()  # the door's receipt goes once the router has the document
    assert receipts.get(doc_a["id"]) is None


def test_idempotency_key_has_the_sdk_semantics(http: httpx.Client,
                                               tokens: dict[str, str]) -> None:
    key, text = f"app-{uuid.uuid4()}", f"idem {uuid.uuid4()}"
    first = _submit(http, tokens["producer"], key=key, text=text)
    again = _submit(http, tokens["producer"], key=key, text=text)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() | {"duplicate": True}
    other = _submit(http, tokens["producer"], key=key, text=text + " changed")
    assert other.status_code == 422
    assert other.json()["error"]["field"] == "idempotency_key"


def test_simultaneous_submissions_with_one_key_make_one_document(
        http: httpx.Client, tokens: dict[str, str]) -> None:
    key, text = f"app-{uuid.uuid4()}", f"race {uuid.uuid4()}"

    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=http.base_url, timeout=60) as own:
            return _submit(own, tokens["producer"], key=key, text=text)

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(one, range(10)))
    assert [a.status_code for a in answers] == [202] * 10, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert sorted(a.json()["duplicate"] for a in answers) == [False] + [True] * 9
    assert _follow(http, tokens["producer"], answers[0].json()["id"])["state"] == "completed"


def test_bad_input_names_the_field(http: httpx.Client, tokens: dict[str, str]) -> None:
    bad = http.post("/v1/documents", headers=_auth(tokens["producer"]), data={
        "flow": "document", "tenant": CITY_A, "metadata": "{not json"},
        files=[("files", ("a.pdf", minimal_pdf("x"), "application/pdf"))])
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "metadata"
    missing = http.post("/v1/documents", headers=_auth(tokens["producer"]),
                        data={"flow": "document", "tenant": CITY_A})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "files"
    empty = http.post("/v1/documents", headers=_auth(tokens["producer"]), data={
        "flow": "document", "tenant": CITY_A},
        files=[("files", ("vide.pdf", b"", "application/pdf"))])
    assert empty.status_code == 422 and empty.json()["error"]["field"] == "files[0]"
    assert "vide.pdf" in empty.text and "/tmp" not in empty.text  # no server path shown
    unknown = _submit(http, tokens["producer"], tenant="123456782")
    assert unknown.status_code == 403  # no role there (whether it exists is not said)


def test_headers_are_strict_and_cors_closed(http: httpx.Client) -> None:
    got = http.get("/healthz")
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in got.headers["content-security-policy"]
    pre = http.options("/v1/documents", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in pre.headers
    spec = http.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert http.get("/docs").status_code == 200


def test_syndicate_admin_sees_its_member_cities(http: httpx.Client, tokens: dict[str, str],
                                                doc_a: dict[str, Any]) -> None:
    synd = _auth(tokens["syndicate"])
    assert http.get(f"/v1/documents/{doc_a['id']}", headers=synd).json()["tenant"] == CITY_A
    assert wait_until(lambda: doc_a["id"] in {
        d["id"] for d in http.get("/v1/documents", headers=synd).json()["documents"]}, 30)
    reach = {t["siren"]: t for t in http.get("/v1/tenants", headers=synd).json()["tenants"]}
    assert set(reach) == {SYNDICATE, CITY_A, CITY_B}
    assert reach[CITY_A]["roles"] == ["admin"] and reach[CITY_A]["parent"] == SYNDICATE
    assert "connectors" not in reach[CITY_A] and "settings" not in reach[CITY_A]


# --- the isolation matrix ---------------------------------------------------------------

def _routes(http: httpx.Client, public: bool = False) -> list[tuple[str, str, str | None]]:
    """Every (method, path, permission) of the published OpenAPI document: those behind a
    token, or (``public``) those anyone may call."""
    spec = http.get("/openapi.json").json()
    routes = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if op.get("x-permission") == "public":
                assert "security" not in op, f"{method.upper()} {path} is public"
            else:
                assert op.get("security"), f"{method.upper()} {path} is not behind a token"
            if public == (op.get("x-permission") == "public"):
                routes.append((method, path, op.get("x-permission")))
    return routes


def _call(http: httpx.Client, method: str, path: str, token: str | None, *,
          doc: dict[str, Any], owner: str, admin: str,
          ops: dict[str, str] | None = None) -> httpx.Response:
    """``method path`` as ``token`` on city A's objects (``owner`` sent A's document and
    uploads, ``admin`` made its webhooks; ``ops``: its dead letters and acte)."""
    if path.startswith("/v1/uploads") or path == "/v1/documents/uploaded":
        return call_upload_route(http, method, path, token, owner=owner, tenant=CITY_A)
    if path.startswith(("/v1/webhooks", "/v1/events")):
        return call_push_route(http, method, path, token, admin=admin, tenant=CITY_A)
    ops_call = call_ops_route(http, method, path, token, ops) if ops is not None else None
    if ops_call is not None:
        return ops_call
    if method == "post" and path == "/v1/documents":
        return _submit(http, token, text=f"matrix {uuid.uuid4()}")
    sha = next(f["sha256"] for f in doc["files"] if f["kind"] == "submitted")
    url = path.replace("{doc_id}", doc["id"]).replace("{sha256}", sha)
    return http.request(method, url, headers=_auth(token))


def _lacking(permission: str) -> str:
    """A role of city A lacking ``permission`` (one that still reads, if any)."""
    lacking = [r for r, perms in ROLES.items() if permission not in perms]
    readers = [r for r in lacking if "read" in ROLES[r]]
    return (readers or lacking)[0]


def _holding(permission: str) -> str:
    """The first role holding ``permission`` (the producer is the one that sent A's
    document and acte)."""
    return next(r for r, perms in ROLES.items() if permission in perms)


@pytest.fixture()
def matrix_hooks(settings: Settings) -> Iterator[None]:
    """The subscriptions the matrix makes are gone after it (they would get every later
    event of city A for the rest of the session)."""
    yield
    remove_matrix_hooks(Runtime(settings).store)


@pytest.mark.usefixtures("matrix_hooks")
def test_isolation_matrix(http: httpx.Client, tokens: dict[str, str],
                          doc_a: dict[str, Any], ops_a: dict[str, str]) -> None:
    routes = _routes(http)
    assert {p for _, _, p in routes} <= {"submit", "read", "journal", "export", "webhooks",
                                         "replay", "discard", "cancel", "proofs", "audit",
                                         "authenticated"}, "a new permission: extend the matrix"
    secrets = [doc_a["id"], MARKER, *ops_a.values()]

    def call(method: str, path: str, token: str | None) -> httpx.Response:
        return _call(http, method, path, token, doc=doc_a, owner=tokens["producer"],
                     admin=tokens["admin"], ops=ops_a)

    for method, path, perm in routes:
        where = f"{method.upper()} {path}"
        owned = path in NAMED or any(p in path for p in (  # 404 to another tenant
            "{doc_id}", "{dlq_id}", "{upload_id}", "{sub_id}"))
        scoped = method == "post" or path in SCOPED  # names a tenant: 403 outside
        for case in ("none", "expired", "revoked"):
            got = call(method, path, tokens.get(case))
            assert got.status_code == 401, f"{where} {case}: {got.status_code}"
            assert method == "head" or got.json()["error"]["field"] == "Authorization"
        got = call(method, path, tokens["other"])
        _never_leaks(got, secrets, where)
        if owned:
            assert got.status_code == 404, f"{where} other tenant: {got.status_code}"
        elif scoped:
            assert got.status_code == 403, f"{where} other tenant: {got.status_code}"
        else:
            assert got.status_code == 200, f"{where} other tenant: {got.status_code}"
        if perm == "authenticated":
            continue
        role = _lacking(perm)  # the producer token is not the one that sent A's document
        got = call(method, path, tokens["producer2" if role == "producer" else role])
        _never_leaks(got, secrets, where)
        if "{upload_id}" in path or "{sub_id}" in path:
            expected = 404  # an upload is its owner's alone, a subscription its admins'
        elif owned:
            expected = 403 if "read" in ROLES[role] else 404
        else:
            expected = 403 if scoped else 200
        assert got.status_code == expected, f"{where} as {role}: {got.status_code}"
        allowed = call(method, path, tokens[_holding(perm)])
        if path in REFUSED_WHEN_ALLOWED:
            status, field = REFUSED_WHEN_ALLOWED[path]
            assert (allowed.status_code, allowed.json()["error"]["field"]) == (status, field), \
                f"{where} allowed: {allowed.status_code} {allowed.text}"
        else:
            assert allowed.status_code in (200, 201, 202, 204), \
                f"{where} allowed: {allowed.status_code} {allowed.text[:300]}"


def _never_leaks(got: httpx.Response, secrets: list[str], where: str) -> None:
    body = got.text
    leaked = [s for s in secrets if s in body]
    assert not leaked, f"{where} leaks A's {leaked}"
    if got.status_code == 200 and body and "webhooks" in got.json():
        assert all(w["tenant"] != CITY_A for w in got.json()["webhooks"]), where
    if got.status_code == 200 and body and "tenants" in got.json():
        assert CITY_A not in {t["siren"] for t in got.json()["tenants"]}, where


def test_public_routes_never_leak(http: httpx.Client, tokens: dict[str, str],
                                  doc_a: dict[str, Any]) -> None:
    """Health and login answer anyone alike: whatever the token, the same status, and
    never a tenant's data."""
    routes = _routes(http, public=True)
    assert {p for _, p, _ in routes} >= {"/healthz", "/readyz", "/v1/auth/login",
                                         "/v1/auth/callback", "/v1/auth/logout"}
    for method, path, _ in routes:
        answers = set()
        for case in ("none", "expired", "revoked", "other", "producer", "admin"):
            got = _call(http, method, path, tokens.get(case), doc=doc_a,
                        owner=tokens["producer"], admin=tokens["admin"])
            _never_leaks(got, [doc_a["id"], MARKER], f"{method.upper()} {path} {case}")
            answers.add(got.status_code)
        assert len(answers) == 1, f"{method.upper()} {path} answers by token: {answers}"


def test_without_oidc_the_login_says_what_to_configure(http: httpx.Client, settings: Settings,
                                                        tokens: dict[str, str]) -> None:
    for method, path in (("get", "/v1/auth/login"), ("get", "/v1/auth/callback"),
                         ("post", "/v1/auth/logout")):
        got = http.request(method, path)
        assert got.status_code == 501 and got.json()["error"]["field"] == "DEMAT_OIDC_CLIENT_ID"
    runtime = Runtime(settings)  # a session record, as a login would leave: not a door here
    login = IdentityStore.of(runtime).authenticate(tokens["admin"]).login
    secret, _ = SessionStore(runtime.store, timedelta(hours=1)).open(login, {}, "")
    got = http.get("/v1/auth/me", headers={"Cookie": f"demat_session={secret}"})
    assert got.status_code == 401 and got.json()["error"]["field"] == "Authorization"
    me = http.get("/v1/auth/me", headers=_auth(tokens["admin"]))
    assert me.status_code == 200 and me.json()["login"] == login and me.json()["session"] is None
    assert me.json()["tenants"][0]["roles"] == ["admin"]


def test_a_document_not_routed_yet_answers_submitted_to_those_who_may_see_it(
        http: httpx.Client, tokens: dict[str, str], settings: Settings) -> None:
    """Between the 202 and the router's first write, the API's receipt answers
    ``submitted`` — within the same isolation as the document's state."""
    runtime = Runtime(settings)
    producer = IdentityStore.of(runtime).authenticate(tokens["producer"])
    doc_id = f"01pending-{uuid.uuid4().hex[:12]}"  # no state: the bus never saw it
    file = FileRef(sha256="c" * 64, size=3, name="courrier.pdf", media_type="application/pdf")
    receipts = Receipts(runtime.database)
    receipts.keep(Envelope(id=doc_id, tenant=CITY_A, flow="document", metadata={},
                           producer=producer.producer, submitted_by=producer.actor,
                           files=[file], created_at=datetime.now(UTC)))
    for case, expected in (("producer", 200), ("operator", 200), ("producer2", 404),
                           ("other", 404), ("none", 401)):
        got = http.get(f"/v1/documents/{doc_id}", headers=_auth(tokens.get(case)))
        assert got.status_code == expected, f"{case}: {got.status_code}"
        files = http.get(f"/v1/documents/{doc_id}/artefacts", headers=_auth(tokens.get(case)))
        assert files.status_code == expected, f"{case}: {files.status_code}"
        if expected == 200:
            assert got.json()["state"] == "submitted" and got.json()["tenant"] == CITY_A
            assert [(f["kind"], f["sha256"]) for f in files.json()["files"]] == [
                ("submitted", file.sha256)]
        else:
            assert doc_id not in got.text and doc_id not in files.text
    assert receipts.prune() >= 0 and receipts.get(doc_id) is not None  # never routed: kept
    journal = http.get(f"/v1/documents/{doc_id}/journal", headers=_auth(tokens["archivist"]))
    assert journal.status_code == 404  # only the state answers from the receipt


def test_refused_requests_are_in_the_security_log(http: httpx.Client, tokens: dict[str, str],
                                                  var_dir: Path) -> None:
    """A 401 (no or bad token) and a 403 (a role the caller lacks) each leave one line
    naming the route, the caller when known, and why; a newline in the path stays one
    line."""
    path = f"/v1/documents/probe-{uuid.uuid4().hex[:8]}%0Aforged"
    assert http.get(path).status_code == 401
    denied = _submit(http, tokens["archivist"])  # archivists may not submit
    assert denied.status_code == 403

    def lines() -> list[str]:
        text = (var_dir / "api-test.log").read_text(errors="replace")
        return [line for line in text.splitlines() if "demat.api.security" in line]

    assert wait_until(lambda: any("refused 403 POST '/v1/documents'" in line
                                  for line in lines()), 10), lines()[-5:]
    probe = path.split("%0A")[0]
    assert any(f"refused 401 GET '{probe}" in line and "caller='-'" in line
               for line in lines())
    assert not any(line.startswith("forged") for line in
                   (var_dir / "api-test.log").read_text(errors="replace").splitlines())
    refused = [line for line in lines() if "refused 403 POST" in line and "archivist" in line]
    assert refused and "do not allow submitting" in refused[-1]

"""People log in with OpenID Connect (authorization code + PKCE) against a real provider,
the npm ``oidc-provider`` (``tests/oidc_support.py``), through a ``demat serve`` on the
session stack: the browser is an httpx client that follows the redirects and posts the
provider's login and consent forms."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest

from bus.dev.embedded import free_ports
from bus.dev.launcher import served_api
from bus.identity import IdentityStore, digest
from bus.oidc import OidcError, OidcVerifier
from bus.runtime import Runtime
from bus.settings import Settings
from tests.oidc_support import oidc_provider, through_provider
from workers.common.demo import minimal_pdf

pytestmark = pytest.mark.stack
ROOT = Path(__file__).resolve().parents[2]
CITY_A, CITY_B = "216900910", "214502494"
WEB, WEB_SECRET, SPA = "demat-web", "demat-web-secret-for-tests-only", "demat-spa"
TAG = uuid.uuid4().hex[:6]
ALICE, BOB = f"alice-{TAG}@ville-a.test", f"bob-{TAG}@ville-b.test"


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    web, spa = free_ports(2)
    return {"web": web, "spa": spa}


@pytest.fixture(scope="module")
def issuer(ports: dict[str, int]) -> Iterator[str]:
    """The provider, with the bus registered as a confidential and as a public client."""
    def client(client_id: str, port: int, **auth: str) -> dict[str, Any]:
        return {"client_id": client_id, "grant_types": ["authorization_code"],
                "response_types": ["code"], "scope": "openid email profile",
                "redirect_uris": [f"http://127.0.0.1:{port}/v1/auth/callback"], **auth}

    with oidc_provider([client(WEB, ports["web"], client_secret=WEB_SECRET),
                        client(SPA, ports["spa"], token_endpoint_auth_method="none")]) as found:
        yield found


def _served(bus_env: dict[str, str], var_dir: Path, issuer: str, port: int, client_id: str,
            secret: str | None) -> Any:
    env = bus_env | {"DEMAT_OIDC_ISSUER": issuer, "DEMAT_OIDC_CLIENT_ID": client_id,
                     "DEMAT_OIDC_REDIRECT_URI": f"http://127.0.0.1:{port}/v1/auth/callback",
                     "DEMAT_OIDC_CLIENT_SECRET": secret or ""}
    return served_api(env, var_dir / f"api-login-{client_id}.log", cwd=ROOT, port=port)


@pytest.fixture(scope="module")
def api(bus_env: dict[str, str], var_dir: Path, issuer: str, ports: dict[str, int]
        ) -> Iterator[str]:
    """The bus as the provider's confidential client."""
    with _served(bus_env, var_dir, issuer, ports["web"], WEB, WEB_SECRET) as served:
        yield served.url


@pytest.fixture(scope="module")
def people(settings: Settings) -> dict[str, Any]:
    """Alice reads and submits in city A, Bob reads in city B; a producer token each."""
    runtime = Runtime(settings)
    ids = IdentityStore.of(runtime)
    for login, tenant in ((ALICE, CITY_A), (BOB, CITY_B)):
        ids.add_user(login, tenant, "operator")
        ids.add_user(login, tenant, "producer")
    return {"store": runtime.store, ALICE: ids.create_token(ALICE)[0],
            BOB: ids.create_token(BOB)[0]}


@pytest.fixture(scope="module")
def docs(api: str, people: dict[str, Any], services: Any) -> dict[str, str]:
    """One document in city A and one in city B, sent with API tokens."""
    found = {}
    for login, tenant in ((ALICE, CITY_A), (BOB, CITY_B)):
        sent = httpx.post(f"{api}/v1/documents", headers={
            "Authorization": f"Bearer {people[login]}"}, data={
            "flow": "document", "tenant": tenant, "metadata": '{"title": "login"}'},
            files=[("files", ("a.pdf", minimal_pdf(f"login {uuid.uuid4()}"),
                              "application/pdf"))], timeout=30)
        assert sent.status_code == 202, sent.text
        found[tenant] = sent.json()["id"]
    for tenant, login in ((CITY_A, ALICE), (CITY_B, BOB)):
        deadline = time.monotonic() + 120
        while httpx.get(f"{api}/v1/documents/{found[tenant]}", headers={
                "Authorization": f"Bearer {people[login]}"}).status_code != 200:
            assert time.monotonic() < deadline, "the document has no state"
            time.sleep(0.5)
    return found


def _browser(api: str) -> httpx.Client:
    return httpx.Client(base_url=api, timeout=30, follow_redirects=False)


def _to_callback(browser: httpx.Client, api: str, login: str, next_path: str = "") -> str:
    """Start a login at the bus and go through the provider: the callback URL it gives."""
    query = f"?{urlencode({'next': next_path})}" if next_path else ""
    started = browser.get(f"/v1/auth/login{query}")
    assert started.status_code == 302, started.text
    return through_provider(browser, started.headers["location"], f"{api}/v1/auth/callback",
                            login)


def _log_in(api: str, login: str) -> tuple[httpx.Client, httpx.Response]:
    """A browser in which ``login`` logged in, and the bus's answer to its callback."""
    browser = _browser(api)
    back = browser.get(_to_callback(browser, api, login))
    return browser, back


def test_a_person_logs_in_and_reads_only_their_tenant(api: str, people: dict[str, Any],
                                                      docs: dict[str, str]) -> None:
    browser, back = _log_in(api, ALICE.upper())  # the provider's email, as the person typed it
    assert back.status_code == 303 and back.headers["location"] == "/v1/auth/me"
    cookies = {c.split("=")[0]: c.lower() for c in back.headers.get_list("set-cookie")}
    assert "httponly" in cookies["demat_session"] and "samesite=lax" in cookies["demat_session"]
    assert "secure" not in cookies["demat_session"]  # served over http here
    assert "httponly" not in cookies["demat_csrf"]
    me = browser.get("/v1/auth/me")
    assert me.status_code == 200, me.text
    assert me.json()["login"] == ALICE  # the email claim, lower-cased: the bus's user
    assert me.json()["actor"].startswith(f"{ALICE} (token session:")
    assert me.json()["tenants"] == [{"siren": CITY_A, "name": me.json()["tenants"][0]["name"],
                                     "roles": ["operator", "producer"]}]
    assert me.json()["session"]["csrf_token"] == browser.cookies["demat_csrf"]
    mine = browser.get(f"/v1/documents/{docs[CITY_A]}")
    assert mine.status_code == 200 and mine.json()["tenant"] == CITY_A
    spec = httpx.get(f"{api}/openapi.json").json()
    for path, ops in spec["paths"].items():
        if "{doc_id}" in path and "get" in ops:
            url = path.replace("{doc_id}", docs[CITY_B]).replace("{sha256}", "0" * 64)
            got = browser.get(url)
            assert got.status_code == 404, f"{path}: {got.status_code}"
            assert docs[CITY_B] not in got.text
    listed = browser.get("/v1/documents").json()["documents"]
    assert docs[CITY_B] not in {d["id"] for d in listed}


def test_unsafe_methods_by_cookie_need_the_csrf_header(api: str, people: dict[str, Any]
                                                       ) -> None:
    browser, _ = _log_in(api, ALICE)

    def submit(headers: dict[str, str]) -> httpx.Response:
        return browser.post("/v1/documents", headers=headers, data={
            "flow": "document", "tenant": CITY_A, "metadata": '{"title": "csrf"}'},
            files=[("files", ("c.pdf", minimal_pdf(f"csrf {uuid.uuid4()}"),
                              "application/pdf"))])

    refused = submit({})
    assert refused.status_code == 403 and refused.json()["error"]["field"] == "X-CSRF-Token"
    assert submit({"X-CSRF-Token": "forged"}).status_code == 403
    sent = submit({"X-CSRF-Token": browser.cookies["demat_csrf"]})
    assert sent.status_code == 202, sent.text
    assert browser.get(f"/v1/documents/{sent.json()['id']}").status_code in (200, 404)


def test_a_wrong_state_is_refused(api: str, people: dict[str, Any]) -> None:
    browser = _browser(api)
    callback = _to_callback(browser, api, ALICE)
    query = parse_qs(urlsplit(callback).query)
    wrong = browser.get("/v1/auth/callback", params={"code": query["code"][0],
                                                     "state": "not-the-state"})
    assert wrong.status_code == 401 and wrong.json()["error"]["field"] == "state"
    assert "demat_session" not in wrong.headers.get("set-cookie", "")
    other = _browser(api)  # another browser, with the right state: not its login
    assert other.get(callback).status_code == 401
    made_up = _browser(api).get("/v1/auth/callback", params={"code": "x", "state": "made-up"},
                                headers={"Cookie": "demat_login=made-up"})
    assert made_up.status_code == 401 and "unknown" in made_up.json()["error"]["message"]
    assert browser.get(callback).status_code == 303  # the right browser still can


def test_a_replayed_code_is_refused(api: str, people: dict[str, Any]) -> None:
    browser = _browser(api)
    callback = _to_callback(browser, api, ALICE)
    assert browser.get(callback).status_code == 303
    again = browser.get(callback)
    assert again.status_code == 401 and again.json()["error"]["field"] == "state"
    code = parse_qs(urlsplit(callback).query)["code"][0]
    fresh = _to_callback(browser, api, ALICE)  # a new login of this browser, the old code
    state = parse_qs(urlsplit(fresh).query)["state"][0]
    replay = browser.get("/v1/auth/callback", params={"code": code, "state": state})
    assert replay.status_code == 401 and replay.json()["error"]["field"] == "code"
    assert "invalid_grant" in replay.json()["error"]["message"]


def test_pkce_is_needed(api: str, issuer: str, people: dict[str, Any]) -> None:
    browser = _browser(api)
    callback = _to_callback(browser, api, ALICE)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    token = httpx.get(f"{issuer}/.well-known/openid-configuration").json()["token_endpoint"]
    exchange = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": f"{api}/v1/auth/callback"}
    for verifier in ({}, {"code_verifier": "a" * 43}):  # none, or not the login's
        stolen = httpx.post(token, data=exchange | verifier, auth=(WEB, WEB_SECRET))
        assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    assert browser.get(callback).status_code == 303  # the same code, with the verifier
    started = browser.get("/v1/auth/login").headers["location"]
    parts = urlsplit(started)
    query = {k: v[0] for k, v in parse_qs(parts.query).items() if not k.startswith("code_")}
    back = through_provider(browser, f"{issuer}{parts.path}?{urlencode(query)}",
                            f"{api}/v1/auth/callback", ALICE)
    assert "error=invalid_request" in back  # the provider refuses a login without PKCE
    refused = browser.get(back)
    assert refused.status_code == 401 and refused.json()["error"]["field"] == "error"


def test_logout_ends_the_session(api: str, people: dict[str, Any]) -> None:
    browser, _ = _log_in(api, ALICE)
    secret = browser.cookies["demat_session"]
    assert browser.post("/v1/auth/logout").status_code == 403  # no CSRF header
    out = browser.post("/v1/auth/logout", headers={"X-CSRF-Token": browser.cookies["demat_csrf"]})
    assert out.status_code == 200 and out.json()["logged_out"] is True
    assert out.json()["end_session_url"].startswith(people_issuer(api))
    assert "demat_session" not in browser.cookies
    stale = httpx.get(f"{api}/v1/auth/me", cookies={"demat_session": secret})
    assert stale.status_code == 401 and stale.json()["error"]["field"] == "demat_session"


def people_issuer(api: str) -> str:
    """The provider this bus sends people to (from its login redirect)."""
    parts = urlsplit(httpx.get(f"{api}/v1/auth/login").headers["location"])
    return f"{parts.scheme}://{parts.netloc}"


def test_sessions_expire(api: str, people: dict[str, Any]) -> None:
    browser, _ = _log_in(api, BOB)
    key = f"identity/sessions/{digest(browser.cookies['demat_session'])}.json"
    record = people["store"].get_json(key)
    assert record["login"] == BOB and browser.get("/v1/auth/me").status_code == 200
    record["expires_at"] = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    people["store"].put_json(key, record)
    assert browser.get("/v1/auth/me").status_code == 401
    assert people["store"].get_json(key) is None  # an expired session is removed


def test_who_the_bus_does_not_know_gets_no_session(api: str, people: dict[str, Any]) -> None:
    for login, field in ((f"stranger-{TAG}@ville-a.test", "login"),
                         (f"unverified-{TAG}@ville-a.test", "email_verified")):
        _, back = _log_in(api, login)
        assert back.status_code == 403 and back.json()["error"]["field"] == field
        assert "demat_session" not in back.headers.get("set-cookie", "")


def test_next_stays_on_the_bus(api: str, people: dict[str, Any]) -> None:
    for bad in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        got = httpx.get(f"{api}/v1/auth/login", params={"next": bad})
        assert got.status_code == 422 and got.json()["error"]["field"] == "next"
    browser = _browser(api)
    back = browser.get(_to_callback(browser, api, BOB, "/v1/tenants"))
    assert back.status_code == 303 and back.headers["location"] == "/v1/tenants"
    assert [t["siren"] for t in browser.get("/v1/tenants").json()["tenants"]] == [CITY_B]


def test_a_public_client_logs_in_with_pkce_alone(bus_env: dict[str, str], var_dir: Path,
                                                issuer: str, ports: dict[str, int],
                                                people: dict[str, Any]) -> None:
    with _served(bus_env, var_dir, issuer, ports["spa"], SPA, None) as served:
        _, back = _log_in(served.url, BOB)
        assert back.status_code == 303, back.text
        me = httpx.get(f"{served.url}/v1/auth/me",
                       cookies={"demat_session": back.cookies["demat_session"]})
        assert me.status_code == 200 and me.json()["login"] == BOB


def test_the_id_token_is_checked(api: str, issuer: str, people: dict[str, Any]) -> None:
    browser, _ = _log_in(api, ALICE)
    key = f"identity/sessions/{digest(browser.cookies['demat_session'])}.json"
    id_token = people["store"].get_json(key)["id_token"]  # the provider's, kept for logout
    nonce = jwt.decode(id_token, options={"verify_signature": False})["nonce"]
    provider = OidcVerifier(issuer, "unused")
    assert provider.id_token(id_token, WEB, nonce)["sub"] == ALICE
    with pytest.raises(OidcError, match="nonce"):
        provider.id_token(id_token, WEB, "another-login's-nonce")
    with pytest.raises(OidcError, match="invalid ID token"):
        provider.id_token(id_token, SPA, nonce)  # issued to another client
    head, body, sig = id_token.split(".")
    with pytest.raises(OidcError, match="invalid ID token"):
        provider.id_token(f"{head}.{body[:-4]}AAAA.{sig}", WEB, nonce)


def test_public_routes_answer_alike_and_never_leak(api: str, people: dict[str, Any],
                                                   docs: dict[str, str]) -> None:
    spec = httpx.get(f"{api}/openapi.json").json()
    public = [(m, p) for p, ops in spec["paths"].items() for m, op in ops.items()
              if op.get("x-permission") == "public"]
    assert ("get", "/v1/auth/callback") in public and ("post", "/v1/auth/logout") in public
    for method, path in public:
        answers = set()
        for token in (None, people[ALICE], people[BOB]):
            got = httpx.request(method, f"{api}{path}", headers={
                "Authorization": f"Bearer {token}"} if token else {})
            assert docs[CITY_A] not in got.text and docs[CITY_B] not in got.text
            assert ALICE not in got.text and BOB not in got.text, f"{path} names a caller"
            answers.add(got.status_code)
        assert len(answers) == 1, f"{method.upper()} {path} answers by token: {answers}"

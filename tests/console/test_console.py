"""The web console in a real headless Chromium on the session's bus: sign in, find an acte
by its number and open its timeline, download its signed PDF, a city's user sees none of
another city's documents (even by typing their URLs), three dead letters replayed in bulk
and seen completing live, the payslip flow's graph, and no serious accessibility violation
on any page (axe-core). Every page's screenshot goes to ``var/console-screenshots``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bus.dev.launcher import wait_until
from bus.identity import IdentityStore
from bus.runtime import Runtime
from bus.settings import Settings
from tests.api.ops_support import auth, finished, submit_acte
from tests.console.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    serious_violations,
    shoot,
    signed_in,
)
from tests.plugins.traps import release
from workers.common.demo import minimal_pdf

pytestmark = pytest.mark.stack
CITY_A, CITY_B = "216900910", "214502494"


@pytest.fixture(scope="module")
def people(settings: Settings) -> dict[str, str]:
    """Tokens: a person of city A with every role there, one of city B (operator and
    archivist), and a producer of each city."""
    ids = IdentityStore.of(Runtime(settings))
    tag = uuid.uuid4().hex[:6]
    found = {}
    for case, tenant, roles in (("a", CITY_A, ("operator", "archivist", "admin", "producer")),
                                ("b", CITY_B, ("operator", "archivist")),
                                ("producer_b", CITY_B, ("producer",))):
        login = f"console-{case.replace('_', '-')}-{tag}"
        for role in roles:
            ids.add_user(login, tenant, role)
        found[case] = ids.create_token(login, name=f"console {case}")[0]
    return found


@pytest.fixture(scope="module")
def http(api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api, timeout=60) as client:
        yield client


def _signed_acte(http: httpx.Client, token: str) -> tuple[str, str]:
    """An acte of city A signed by the city's seal before its transmission, finished:
    its id and number."""
    number = f"CO{uuid.uuid4().hex[:10].upper()}"
    meta = {"nature": 1, "number": number, "decision_date": date.today().isoformat(),
            "subject": "Tarifs de la cantine", "classification": "7.1",
            "classification_date": "2025-01-01", "deposit": False, "sign": True}
    sent = http.post("/v1/documents", headers=auth(token), data={
        "flow": "acte", "tenant": CITY_A, "metadata": json.dumps(meta)},
        files=[("files", ("deliberation.pdf", minimal_pdf(f"Acte {number}"),
                          "application/pdf"))])
    assert sent.status_code == 202, sent.text
    doc_id = sent.json()["id"]
    assert finished(http, token, doc_id)["state"] == "completed"
    return doc_id, number


def _held_letters(http: httpx.Client, token: str, count: int) -> list[dict]:
    """``count`` dead letters of city A: documents of the test flow ``trap`` refused for
    good until released (``tests.plugins.traps``)."""
    ids = []
    for i in range(count):
        sent = http.post("/v1/documents", headers=auth(token), data={
            "flow": "trap", "tenant": CITY_A,
            "metadata": json.dumps({"title": f"held {i}", "trap": "hold"})},
            files=[("files", (f"held-{i}.txt", b"held\n", "text/plain"))])
        assert sent.status_code == 202, sent.text
        ids.append(sent.json()["id"])
    for doc_id in ids:
        assert finished(http, token, doc_id)["state"] == "error"

    def letters() -> list[dict]:
        got = http.get("/v1/dead-letters", headers=auth(token), params={"flow": "trap"})
        return [x for x in got.json()["dead_letters"] if x["doc_id"] in ids]

    assert wait_until(lambda: len(letters()) == count, 60), "no dead letters"
    return letters()


@pytest.fixture(scope="module")
def made(http: httpx.Client, people: dict[str, str], services: Any) -> dict[str, Any]:
    """What the pages show: a signed acte and three dead letters of city A, an acte of B."""
    acte_id, number = _signed_acte(http, people["a"])
    acte_b = submit_acte(http, people["producer_b"], CITY_B)
    letters = _held_letters(http, people["a"], 3)
    finished(http, people["producer_b"], acte_b)
    return {"acte": acte_id, "number": number, "acte_b": acte_b, "letters": letters}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def page_a(browser: Browser, api: str, people: dict[str, str], made: dict) -> Iterator[Page]:
    context, page = signed_in(browser, api, people["a"])
    yield page
    context.close()


def test_find_an_acte_by_number_open_its_timeline_and_download_the_signed_pdf(
        page_a: Page, made: dict) -> None:
    page = page_a
    page.goto("/console/documents")
    page.get_by_label("Clé métier").select_option("acte_number")
    page.get_by_label("Valeur recherchée").fill(made["number"])
    page.get_by_role("button", name="Filtrer").click()
    rows = page.locator("#documents tbody tr[data-doc-id]")
    expect(rows).to_have_count(1)
    shoot(page, "documents")
    rows.first.get_by_role("link", name=made["acte"]).click()
    page.wait_for_url(f"**/console/documents/{made['acte']}")
    expect(page.locator('#timeline > li[data-step="transmit"]')).to_have_count(1)
    expect(page.locator('#timeline > li[data-step="acknowledgement"]')).to_contain_text(
        "réussie")
    expect(page.locator("#metadata")).to_contain_text(made["number"])
    signed = page.locator("#files tr.signed")
    expect(signed.first).to_contain_text("signé")
    shoot(page, "document")
    with page.expect_download() as got:
        signed.first.get_by_role("link").click()
    pdf = got.value.path().read_bytes()
    assert pdf.startswith(b"%PDF") and b"/ByteRange" in pdf  # a PAdES signature's range
    # an acte action: the page's script posts to the API with the session's CSRF token
    page.get_by_label("Motif de l'annulation").fill("Erreur matérielle")
    page.get_by_role("button", name="Annuler l'acte").click()
    expect(page.locator("#h-actions ~ .result")).to_contain_text("Demande acceptée")


def test_a_city_sees_none_of_another_citys_documents(browser: Browser, api: str,
                                                      people: dict[str, str], made: dict,
                                                      settings: Settings) -> None:
    context, page = signed_in(browser, api, people["b"])
    try:
        page.goto("/console/documents")
        shown = page.locator("#documents tbody tr[data-doc-id]")
        ids = shown.evaluate_all("rows => rows.map(r => r.dataset.docId)")
        assert made["acte_b"] in ids and made["acte"] not in ids
        page.goto(f"/console/documents?key=acte_number&value={made['number']}")
        expect(shown).to_have_count(0)
        typed = page.goto(f"/console/documents/{made['acte']}")
        assert typed is not None and typed.status == 404
        assert made["acte"] not in page.locator("main").inner_text()  # nor its contents
        denied = page.goto(f"/console/documents?tenant={CITY_A}")
        assert denied is not None and denied.status == 403
        page.goto("/console/dead-letters?status=all")
        letters = {x["id"] for x in made["letters"]}
        listed = page.locator("#letters tbody tr[data-dlq-id]").evaluate_all(
            "rows => rows.map(r => r.dataset.dlqId)")
        assert not letters & set(listed)
        for path in (f"/v1/documents/{made['acte']}", f"/v1/documents/{made['acte']}/artefacts"):
            assert page.request.get(path).status == 404  # the API, with the same cookie
        # the session keeps the token's roles as long as the token lives: revoked, it ends
        IdentityStore.of(Runtime(settings)).revoke(people["b"][4:20])
        page.goto("/console/documents")
        assert "/console/login" in page.url
        assert page.request.get(f"/v1/documents/{made['acte_b']}").status == 401
    finally:
        context.close()


def test_bulk_replay_of_three_dead_letters_seen_completing_live(
        page_a: Page, made: dict, settings: Settings) -> None:
    page = page_a
    store = Runtime(settings).store
    for letter in made["letters"]:  # the partner is fixed: a replay now completes
        release(store, letter["doc_id"])
    page.goto("/console/dead-letters")
    expect(page.locator("#letters")).to_be_visible()
    page.wait_for_function("document.querySelector('[data-live-tenants]').dataset.live"
                           " === 'open'")
    for letter in made["letters"]:
        page.locator(f'tr[data-dlq-id="{letter["id"]}"] input[type=checkbox]').check()
    forged = page.request.post("/v1/dead-letters/replay", data={  # the cookie, no token
        "ids": [made["letters"][0]["id"]], "dry_run": True})
    assert forged.status == 403 and "X-CSRF-Token" in forged.text()
    page.get_by_role("button", name="Simuler").click()
    expect(page.locator("#dlq-result")).to_contain_text("Seraient rejouées : 3")
    dashboard = page.context.new_page()  # the dashboard, open meanwhile, hears of them too
    dashboard.goto("/console/")
    dashboard.wait_for_function("document.querySelector('[data-live-tenants]').dataset.live"
                                " === 'open'")
    page.get_by_role("button", name="Rejouer la sélection").click()
    expect(page.locator("#dlq-result")).to_contain_text("Rejouées : 3")
    for letter in made["letters"]:  # the event stream updates each row, no reload
        status = page.locator(f'tr[data-dlq-id="{letter["id"]}"] [data-field="letter-status"]')
        expect(status).to_have_attribute("data-status", "replayed", timeout=60_000)
        state = page.locator(f'tr[data-dlq-id="{letter["id"]}"] [data-field="state"]')
        expect(state).to_have_attribute("data-state", "completed", timeout=60_000)
        expect(state).to_have_text("terminé")
    shoot(page, "dead-letters")
    expect(dashboard.locator("#refresh")).to_be_visible()
    dashboard.get_by_role("link", name="actualiser les chiffres").click()
    expect(dashboard.locator("#by-state")).to_contain_text("trap")
    dashboard.close()


def test_the_payslip_flow_graph_renders(page_a: Page) -> None:
    page = page_a
    page.goto("/console/flows")
    page.get_by_role("link", name="payslip").click()
    graph = page.locator("svg.flow-graph")
    expect(graph).to_be_visible()
    steps = graph.locator("g.step").evaluate_all("gs => gs.map(g => g.dataset.step)")
    assert steps == ["validate", "seal", "ensap", "agent-space", "secure-mail", "archive",
                     "mail-receipt"]
    expect(graph.locator('g[data-step="ensap"]')).to_contain_text("meta.channels ∋ ensap")
    shoot(page, "flow-payslip")
    page.get_by_role("link", name="EN", exact=True).click()  # another language, same page
    expect(page.get_by_role("heading", level=1)).to_have_text("Flow payslip")
    expect(graph.locator('g[data-step="ensap"]')).to_contain_text("if meta.channels ∋ ensap")
    page.get_by_role("link", name="FR", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Flux payslip")


PAGES = {"/console/": "dashboard", "/console/documents": "documents-all",
         "/console/dead-letters?status=all": "dead-letters-all", "/console/flows": "flows",
         "/console/flows/acte": "flow-acte", "/console/audit": "audit",
         "/console/admin": "admin"}


def test_no_serious_accessibility_violation_on_any_page(browser: Browser, api: str,
                                                        page_a: Page, made: dict) -> None:
    found = {}
    pages = PAGES | {f"/console/documents/{made['acte']}": "document-acte",
                     f"/console/documents/{made['acte']}/chain": "document-chain"}
    for path, name in pages.items():
        answer = page_a.goto(path)
        assert answer is not None and answer.status == 200, path
        policy = answer.headers["content-security-policy"]  # the console's own: 'self' only
        assert "default-src 'self'" in policy and "script-src 'self';" in policy, policy
        shoot(page_a, name)
        if bad := serious_violations(page_a):
            found[path] = bad
    anonymous = browser.new_context(base_url=api, bypass_csp=True)
    login = anonymous.new_page()
    login.goto("/console/login")
    shoot(login, "login")
    if bad := serious_violations(login):
        found["/console/login"] = bad
    anonymous.close()
    assert not found, json.dumps(found, indent=1, ensure_ascii=False)

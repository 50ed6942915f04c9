"""The console's browser tests' tools: Debian's chromium driven by Playwright (never a
downloaded browser), sign-in, screenshots and the axe-core accessibility check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking"]
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = HERE.parents[1] / "var" / "console-screenshots"
SERIOUS = ("serious", "critical")


def signed_in(browser: Browser, base_url: str, token: str) -> tuple[BrowserContext, Page]:
    """A new browser context (its own cookies) signed in to the console with ``token``;
    CSP is bypassed only so that the test can inject axe-core."""
    context = browser.new_context(base_url=base_url, bypass_csp=True, locale="fr-FR",
                                  accept_downloads=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto("/console/")
    assert "/console/login" in page.url, page.url  # no session: the sign-in form
    page.get_by_label("Jeton d'accès").fill(token)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/console/")
    return context, page


def shoot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations of impact serious or critical on the page (WCAG A/AA rules)."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag',
            values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""")
    return [v for v in found if v["impact"] in SERIOUS]

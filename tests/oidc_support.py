"""A real OpenID provider for the tests: the npm package ``oidc-provider`` on Node.js
(``tests/oidc/provider.mjs``, installed by ``make test``), and a browser's way through
its login and consent forms."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from bus.dev.embedded import free_ports

PROVIDER = Path(__file__).resolve().parent / "oidc" / "provider.mjs"


@contextlib.contextmanager
def oidc_provider(clients: list[dict[str, Any]]) -> Iterator[str]:
    """The provider with ``clients`` registered, listening: its issuer URL."""
    proc = subprocess.Popen(["node", str(PROVIDER), str(free_ports(1)[0]), json.dumps(clients)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline()  # "ready ISSUER" once it listens
        assert line.startswith("ready "), f"oidc-provider did not start: {line!r}"
        yield line.split()[1]
    finally:
        proc.terminate()
        proc.wait(10)


class _Form(HTMLParser):
    """The first form of a page: its action and its inputs' values."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = found.get("action")
        elif tag == "input" and found.get("name"):
            self.fields[str(found["name"])] = found.get("value") or ""


def through_provider(browser: httpx.Client, url: str, stop_at: str, login: str) -> str:
    """Follow ``url`` as a browser would, filling the provider's login form as ``login``
    and accepting its consent form, until a redirect to ``stop_at``: that URL (not
    called)."""
    for _ in range(20):
        got = browser.get(url)
        while got.is_redirect:
            url = urljoin(str(got.url), got.headers["location"])
            if url.startswith(stop_at):
                return url
            got = browser.get(url)
        assert got.status_code == 200, f"{got.url}: {got.status_code} {got.text[:300]}"
        form = _Form()
        form.feed(got.text)
        assert form.action, f"no form at {got.url}: {got.text[:300]}"
        fields = form.fields | ({"login": login, "password": "any"}
                                if form.fields.get("prompt") == "login" else {})
        posted = browser.post(urljoin(str(got.url), form.action), data=fields)
        assert posted.is_redirect, f"{form.action}: {posted.status_code} {posted.text[:300]}"
        url = urljoin(str(posted.url), posted.headers["location"])
        if url.startswith(stop_at):
            return url
    raise AssertionError(f"the provider never sent the browser to {stop_at}")

"""A client of the Pastell-compatible door as the incumbent's clients call it, and the
tokens of the tests' callers."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any
from urllib.parse import quote_from_bytes, quote_plus

import httpx

from bus.identity import IdentityStore
from bus.runtime import Runtime
from bus.settings import Settings

CITY_A, CITY_B = "216900910", "214502494"
FINISHED_STATES = ("termine", "acquiter-tdt", "annuler-tdt", "fatal-error", "tdt-error",
                   "erreur-verif-tdt", "erreur-verif-iparapheur", "rejet-iparapheur")


def make_callers(settings: Settings) -> dict[str, tuple[str, str]]:
    """login and token of each case: a mail application on city B (i-Parapheur), an
    actes application on city A (may cancel its actes), a producer of city A."""
    ids = IdentityStore.of(Runtime(settings))
    tag = uuid.uuid4().hex[:6]
    grants = {"maarch": [(CITY_B, "producer")],
              "megacte": [(CITY_A, "producer"), (CITY_A, "operator")],
              "city_a": [(CITY_A, "producer")]}
    found = {}
    for case, roles in grants.items():
        login = f"{case}-{tag}"
        for tenant, role in roles:
            ids.add_user(login, tenant, role)
        found[case] = (login, ids.create_token(login, name=f"pastell {case}")[0])
    return found


def form_body(fields: dict[str, str | bytes]) -> dict[str, Any]:
    """An urlencoded body as PHP's ``http_build_query`` makes it: bytes percent-encoded as
    they are (Maarch sends a file's content this way)."""
    body = "&".join(f"{quote_plus(k)}=" + (quote_from_bytes(v) if isinstance(v, bytes)
                                          else quote_plus(v)) for k, v in fields.items())
    return {"content": body.encode(),
            "headers": {"Content-Type": "application/x-www-form-urlencoded"}}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(login: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{login}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


class Pastell:
    """Calls ``/api/v2`` and checks the status code of each answer, as clients do."""

    def __init__(self, http: httpx.Client, token: str, login: str | None = None) -> None:
        """Bearer authentication, or Basic when ``login`` is given (as Maarch does)."""
        self.http = http
        self.headers = basic(login, token) if login else bearer(token)

    def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        headers = self.headers | kwargs.pop("headers", {})
        got = self.http.request(method, f"/api/v2{path}", headers=headers, **kwargs)
        assert got.status_code == expect, (method, path, got.status_code, got.text)
        if got.headers["content-type"].startswith("application/json"):
            return got.json()
        return got.content

    def entity_of(self, siren: str) -> str:
        """The ``id_e`` of the entity whose SIREN is ``siren``, from ``GET /entite``."""
        rows = self.call("GET", "/entite", 200)
        [row] = [r for r in rows if r["siren"] == siren]
        assert isinstance(row["id_e"], str) and row["denomination"]
        return row["id_e"]

    def wait_state(self, id_e: str, id_d: str, wanted: tuple[str, ...],
                   timeout: float = 150) -> dict[str, Any]:
        """The detail once ``last_action.action`` is one of ``wanted`` (or a final one)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.call("GET", f"/entite/{id_e}/document/{id_d}", 200)
            if got["last_action"]["action"] in wanted + FINISHED_STATES:
                return got
            time.sleep(0.5)
        raise AssertionError(f"{id_d} never reached {wanted}: {got['last_action']}")

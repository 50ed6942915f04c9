"""i-Parapheur v5 client: a folder per document, polled until signed or rejected.

REST shape of i-Parapheur v5: an OpenID Connect token (password grant on the Keycloak
realm ``api``), folders created on a desk with a type and a sub-type
(``POST /api/standard/v1/tenant/{t}/desk/{d}/folder``, multipart: ``folder`` JSON and
``documents``), listed by state (``GET .../desk/{d}/{state}``), read with their steps and
history (``/api/v1/tenant/{t}/folder/{f}``, ``.../history``), documents and detached
signatures downloaded, and finished or rejected folders deleted.

Creation is idempotent: the folder is named after the document (``name``), and every
try first asks whether a folder of that name exists.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from connectors.errors import PermanentError
from connectors.http import call, raise_for_status, resolve_url

PARTNER = "iparapheur"
STD = "/api/standard/v1"
INTERNAL = "/api/v1"
TOKEN_PATH = "/auth/realms/api/protocol/openid-connect/token"
LOOKUP_STATES = ("PENDING", "FINISHED", "REJECTED", "DRAFT")


@dataclass(frozen=True)
class UploadFile:
    """A document to put in a folder."""

    name: str
    data: bytes
    media_type: str


@dataclass
class IparapheurClient:
    """Talks to one i-Parapheur tenant and desk (``instant``: False, the step polls)."""

    base_url: str
    tenant_id: str
    desk_id: str
    username: str
    password: str = field(repr=False)
    type_id: str = "DEMAT"
    subtype_id: str = "signature"
    client_id: str = "ipcore-web"
    timeout: float = 30.0
    poll_seconds: float = 300.0
    delete_rejected: bool = True
    instant: bool = False
    _token: str | None = field(default=None, repr=False)
    _http: httpx.AsyncClient | None = field(default=None, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)

    @classmethod
    def from_options(cls, options: dict[str, Any], *, var_dir: Path) -> IparapheurClient:
        """Options: ``url``, ``tenant_id``, ``desk_id``, ``username``, ``password`` (or
        ``password_env``), ``type``, ``subtype``, ``timeout``, ``poll_seconds``,
        ``delete_rejected``."""
        import os

        missing = [k for k in ("url", "tenant_id", "desk_id", "username") if not options.get(k)]
        if missing:
            raise ValueError(f"iparapheur connector: missing option(s) {', '.join(missing)}")
        password = (os.environ.get(str(options["password_env"]), "")
                    if options.get("password_env") else str(options.get("password", "")))
        return cls(resolve_url(str(options["url"]), var_dir).rstrip("/"),
                   str(options["tenant_id"]), str(options["desk_id"]),
                   str(options["username"]), password,
                   type_id=str(options.get("type", "DEMAT")),
                   subtype_id=str(options.get("subtype", "signature")),
                   client_id=str(options.get("client_id", "ipcore-web")),
                   timeout=float(options.get("timeout", 30)),
                   poll_seconds=float(options.get("poll_seconds", 300)),
                   delete_rejected=bool(options.get("delete_rejected", True)))

    # --- plumbing -------------------------------------------------------------------

    @property
    def http(self) -> httpx.AsyncClient:
        """The HTTP client of the running event loop (one per loop: pools are loop-bound)."""
        loop = asyncio.get_running_loop()
        if self._http is None or self._loop is not loop:
            self._http = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout)
            self._loop = loop
        return self._http

    async def _login(self) -> str:
        resp = await self.http.post(TOKEN_PATH, data={
            "grant_type": "password", "client_id": self.client_id,
            "username": self.username, "password": self.password})
        if resp.status_code in (400, 401):
            raise PermanentError(f"{PARTNER}: authentication refused for user "
                                 f"{self.username!r}", partner=PARTNER, status=resp.status_code)
        raise_for_status(resp, PARTNER)
        self._token = resp.json()["access_token"]
        return self._token

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One authenticated request (a stale token is renewed once)."""
        for _ in range(2):
            token = self._token or await self._login()
            resp = await self.http.request(method, path, headers={
                "Authorization": f"Bearer {token}", "Accept": "application/json"}, **kwargs)
            if resp.status_code != 401:
                return resp
            self._token = None
        return resp

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        async def go() -> Any:
            return raise_for_status(await self._send(method, path, **kwargs), PARTNER).json()

        return await call(PARTNER, go)

    def _desk(self) -> str:
        return f"{STD}/tenant/{self.tenant_id}/desk/{self.desk_id}"

    def _folder_path(self, folder_id: str) -> str:
        return f"{INTERNAL}/tenant/{self.tenant_id}/folder/{folder_id}"

    # --- API ------------------------------------------------------------------------

    async def lookup(self, name: str) -> dict[str, Any] | None:
        """The folder named ``name`` in any state, if one exists."""
        for state in LOOKUP_STATES:
            page = await self._json("GET", f"{self._desk()}/{state}",
                                    params={"searchTerm": name, "size": 50})
            for folder in page.get("content", []):
                if folder.get("name") == name:
                    return folder
        return None

    async def create(self, name: str, files: list[UploadFile], *, subtype: str | None = None,
                     metadata: dict[str, Any] | None = None) -> tuple[dict[str, Any], bool]:
        """The folder ``name`` (created and started unless it exists); True if created."""
        params = {"name": name, "typeId": self.type_id, "subtypeId": subtype or self.subtype_id,
                  "metadata": metadata or {}, "visibility": "CONFIDENTIAL"}
        created = False

        async def ask_then_create() -> dict[str, Any]:
            nonlocal created
            found = await self.lookup(name)
            if found is not None:
                return found
            parts: list[tuple[str, tuple[str, bytes, str]]] = [
                ("folder", ("folder.json", json.dumps(params).encode(), "application/json"))]
            parts += [("documents", (f.name, f.data, f.media_type)) for f in files]
            resp = raise_for_status(await self._send(
                "POST", f"{self._desk()}/folder", params={"autoStart": "true"}, files=parts),
                PARTNER)
            created = True
            return resp.json()

        folder = await call(PARTNER, ask_then_create)
        return folder, created

    async def folder(self, folder_id: str) -> dict[str, Any]:
        return await self._json("GET", self._folder_path(folder_id))

    async def history(self, folder_id: str) -> list[dict[str, Any]]:
        return await self._json("GET", f"{self._folder_path(folder_id)}/history")

    async def document(self, folder_id: str, document_id: str) -> bytes:
        return await self._bytes(f"{self._folder_path(folder_id)}/document/{document_id}")

    async def detached_signature(self, folder_id: str, document_id: str, sig_id: str) -> bytes:
        return await self._bytes(f"{self._folder_path(folder_id)}/document/{document_id}"
                                 f"/detachedSignature/{sig_id}")

    async def delete(self, folder_id: str) -> bool:
        """Delete a finished or rejected folder; False when it was already gone."""
        async def go() -> bool:
            resp = await self._send("DELETE", f"{self._desk()}/folder/{folder_id}")
            if resp.status_code == 404:
                return False
            raise_for_status(resp, PARTNER)
            return True

        return await call(PARTNER, go)

    async def _bytes(self, path: str) -> bytes:
        async def go() -> bytes:
            return raise_for_status(await self._send("GET", path), PARTNER).content

        return await call(PARTNER, go)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

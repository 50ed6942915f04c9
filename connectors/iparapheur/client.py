"""i-Parapheur v5 client on the STANDARD API (``/api/standard/v1``): a folder per document.

Login: OpenID Connect password grant on the Keycloak realm ``api`` (client ``ipcore-web``,
as Pastell's connector does), refreshed or renewed when the server answers 401. Folders
are created on the bus's desk as ``multipart/form-data``: a PREMIS XML ``folder`` part
(type, sub-type, name, main-document flags, metadata) and one ``documents`` part per file,
started at once (``autoStart``). The folder's progress is read from its PREMIS summary
(``.../folder/{id}/premis``: the ARCHIVE task reached = signed, DELETE reached = rejected),
its signed documents and history from its ZIP (``.../folder/{id}/zip``). Type, sub-type,
tenant and desk names are resolved to ids through the typology / tenant / desk lists.

Creation is idempotent: the folder is named after the document, and every try first scans
the desk's folder lists (every state, every page) for a folder of that name.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from connectors.errors import PermanentError
from connectors.http import call, raise_for_status, resolve_url
from connectors.iparapheur import bundle, premis
from connectors.iparapheur.premis import Premis

PARTNER = "iparapheur"
STD = "/api/standard/v1"
TOKEN_PATH = "/auth/realms/api/protocol/openid-connect/token"
CLIENT_ID = "ipcore-web"
# where a folder the bus created can be: not started, on one of our tasks, sent on
# (DOWNSTREAM: an action of our desk was performed on it), ended
LOOKUP_STATES = ("DOWNSTREAM", "DRAFT", "PENDING", "FINISHED", "REJECTED")
LOOKUP_SORT = "CREATION_DATE,desc"  # FolderSortBy: the newest first (ours is recent)
PAGE_SIZE = 50


@dataclass(frozen=True)
class UploadFile:
    """A document to put in a folder."""

    name: str
    data: bytes
    media_type: str


@dataclass
class _Token:
    access: str
    refresh: str
    expires_at: float


@dataclass
class IparapheurClient:
    """Talks to one i-Parapheur tenant and desk (``instant``: False, the step polls)."""

    base_url: str
    tenant_id: str
    desk_id: str
    username: str
    password: str = field(repr=False)
    type_id: str = "DEMAT"  # a type's id or name
    subtype_id: str = "signature"  # a sub-type's id or name
    tenant_name: str = ""  # resolved to ``tenant_id`` when that is empty
    desk_name: str = ""  # resolved to ``desk_id`` when that is empty
    client_id: str = CLIENT_ID
    timeout: float = 30.0
    poll_seconds: float = 300.0
    delete_rejected: bool = True
    page_size: int = PAGE_SIZE
    instant: bool = False
    _token: _Token | None = field(default=None, repr=False)
    _ids: dict[tuple[str, ...], str] = field(default_factory=dict, repr=False)
    _http: httpx.AsyncClient | None = field(default=None, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)

    @classmethod
    def from_options(cls, options: dict[str, Any], *, var_dir: Path) -> IparapheurClient:
        """Options: ``url``, ``username``, ``password`` (or ``password_env``), ``tenant_id``
        (or ``tenant``: its name), ``desk_id`` (or ``desk``: its name), ``type`` and
        ``subtype`` (id or name), ``client_id``, ``timeout``, ``poll_seconds``,
        ``delete_rejected``, ``page_size``."""
        missing = [k for k in ("url", "username") if not options.get(k)]
        missing += [f"{k}_id (or {k})" for k in ("tenant", "desk")
                    if not options.get(f"{k}_id") and not options.get(k)]
        if missing:
            raise ValueError(f"iparapheur connector: missing option(s) {', '.join(missing)}")
        password = (os.environ.get(str(options["password_env"]), "")
                    if options.get("password_env") else str(options.get("password", "")))
        return cls(resolve_url(str(options["url"]), var_dir).rstrip("/"),
                   str(options.get("tenant_id") or ""), str(options.get("desk_id") or ""),
                   str(options["username"]), password,
                   type_id=str(options.get("type", "DEMAT")),
                   subtype_id=str(options.get("subtype", "signature")),
                   tenant_name=str(options.get("tenant") or ""),
                   desk_name=str(options.get("desk") or ""),
                   client_id=str(options.get("client_id", CLIENT_ID)),
                   timeout=float(options.get("timeout", 30)),
                   poll_seconds=float(options.get("poll_seconds", 300)),
                   delete_rejected=bool(options.get("delete_rejected", True)),
                   page_size=int(options.get("page_size", PAGE_SIZE)))

    # --- plumbing -------------------------------------------------------------------

    @property
    def http(self) -> httpx.AsyncClient:
        """The HTTP client of the running event loop (one per loop: pools are loop-bound)."""
        loop = asyncio.get_running_loop()
        if self._http is None or self._loop is not loop:
            self._http = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout)
            self._loop = loop
        return self._http

    async def _grant(self, form: dict[str, str]) -> httpx.Response:
        return await self.http.post(TOKEN_PATH, data={"client_id": self.client_id, **form})

    async def _login(self) -> str:
        """A valid access token: refreshed while the refresh token lives, else a new login."""
        token = self._token
        if token and time.monotonic() < token.expires_at:
            return token.access
        resp = None
        if token and token.refresh:
            resp = await self._grant({"grant_type": "refresh_token",
                                      "refresh_token": token.refresh})
        if resp is None or resp.status_code in (400, 401):
            resp = await self._grant({"grant_type": "password", "username": self.username,
                                      "password": self.password})
            if resp.status_code in (400, 401):
                raise PermanentError(f"{PARTNER}: authentication refused for user "
                                     f"{self.username!r}", partner=PARTNER,
                                     status=resp.status_code)
        raise_for_status(resp, PARTNER)
        body = resp.json()
        lifetime = float(body.get("expires_in", 60))
        self._token = _Token(body["access_token"], body.get("refresh_token", ""),
                             time.monotonic() + max(lifetime - 10, lifetime / 2))
        return self._token.access

    async def _send(self, method: str, path: str, *, accept: str = "application/json",
                    **kwargs: Any) -> httpx.Response:
        """One authenticated request (a token the server refuses is renewed once)."""
        for _ in range(2):
            token = await self._login()
            resp = await self.http.request(method, path, headers={
                "Authorization": f"Bearer {token}", "Accept": accept}, **kwargs)
            if resp.status_code != 401:
                return resp
            if self._token is not None:
                self._token.expires_at = 0.0  # expired for the server: refresh or log in
        return resp

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        async def go() -> Any:
            return raise_for_status(await self._send(method, path, **kwargs), PARTNER).json()

        return await call(PARTNER, go)

    async def _bytes(self, path: str, accept: str) -> bytes:
        async def go() -> bytes:
            return raise_for_status(await self._send("GET", path, accept=accept),
                                    PARTNER).content

        return await call(PARTNER, go)

    async def pages(self, path: str, **params: Any) -> AsyncIterator[dict[str, Any]]:
        """Every element of a paged list, page after page up to the last one."""
        page = 0
        while True:
            body = await self._json("GET", path, params={**params, "page": page,
                                                         "size": self.page_size})
            for item in body.get("content") or []:
                yield item
            if _last_page(body, page):
                return
            page += 1

    async def _resolve(self, key: tuple[str, ...], path: str, wanted: str, what: str) -> str:
        """The id of the element of ``path`` whose id or name is ``wanted`` (cached)."""
        if key not in self._ids:
            async for item in self.pages(path):
                if wanted in (item.get("id"), item.get("name")):
                    self._ids[key] = str(item["id"])
                    break
            else:
                raise PermanentError(f"{PARTNER}: no {what} {wanted!r} (GET {path})",
                                     partner=PARTNER)
        return self._ids[key]

    async def tenant(self) -> str:
        if self.tenant_id:
            return self.tenant_id
        return await self._resolve(("tenant",), f"{STD}/tenant", self.tenant_name, "tenant")

    async def desk(self) -> str:
        if self.desk_id:
            return self.desk_id
        tenant = await self.tenant()
        return await self._resolve(("desk",), f"{STD}/tenant/{tenant}/desk", self.desk_name,
                                   "desk of this user")

    async def type_ref(self) -> str:
        """The id of the configured type."""
        return await self._resolve(("type", self.type_id),
                                   f"{STD}/tenant/{await self.tenant()}/types", self.type_id,
                                   "type")

    async def typology(self, subtype: str | None = None) -> tuple[str, str]:
        """The ids of the configured type and of ``subtype`` (default: the configured one)."""
        tenant, sub = await self.tenant(), subtype or self.subtype_id
        type_id = await self.type_ref()
        sub_id = await self._resolve(("subtype", type_id, sub),
                                     f"{STD}/tenant/{tenant}/types/{type_id}/subtypes", sub,
                                     f"sub-type of type {self.type_id!r}")
        return type_id, sub_id

    async def _desk_path(self) -> str:
        return f"{STD}/tenant/{await self.tenant()}/desk/{await self.desk()}"

    # --- API ------------------------------------------------------------------------

    async def lookup(self, name: str) -> dict[str, Any] | None:
        """The folder named ``name`` on the desk, in any state, if one exists."""
        desk = await self._desk_path()
        type_id = await self.type_ref()
        for state in LOOKUP_STATES:
            async for folder in self.pages(f"{desk}/{state}", typeId=type_id,
                                           sort=LOOKUP_SORT):
                if folder.get("name") == name:
                    return folder
        return None

    async def create(self, name: str, files: list[UploadFile], *, subtype: str | None = None,
                     metadata: dict[str, str] | None = None) -> tuple[dict[str, Any], bool]:
        """The folder ``name`` (created and started unless it exists); True if created."""
        names = [f.name for f in files]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice or not files:
            raise PermanentError(f"{PARTNER}: folder {name!r}: "
                                 + (f"file name(s) {', '.join(twice)} used twice (PREMIS "
                                    "names documents by file name)" if twice
                                    else "no document"), partner=PARTNER)
        type_id, subtype_id = await self.typology(subtype)
        folder_part = premis.draft(name, type_id, subtype_id, [(n, True) for n in names],
                                   metadata={k: str(v) for k, v in (metadata or {}).items()})
        created = False

        async def ask_then_create() -> dict[str, Any]:
            nonlocal created
            found = await self.lookup(name)
            if found is not None:
                return found
            parts = [("folder", ("folder.xml", folder_part, "application/xml"))]
            parts += [("documents", (f.name, f.data, f.media_type)) for f in files]
            resp = raise_for_status(await self._send(
                "POST", f"{await self._desk_path()}/folder", params={"autoStart": "true"},
                files=parts), PARTNER)
            created = True
            return resp.json()

        folder = await call(PARTNER, ask_then_create)
        return folder, created

    async def summary(self, folder_id: str) -> Premis:
        """The folder's PREMIS summary: its typology, documents and tasks."""
        data = await self._bytes(f"{await self._desk_path()}/folder/{folder_id}/premis",
                                 "application/xml")
        try:
            return premis.parse(data)
        except premis.PremisError as exc:
            raise PermanentError(f"{PARTNER}: folder {folder_id}: unreadable PREMIS "
                                 f"summary: {exc}", partner=PARTNER) from None

    async def start(self, folder_id: str, summary: Premis,
                    metadata: dict[str, str] | None = None) -> None:
        """Start a draft folder (its START task)."""
        task = summary.start_task()
        if task is None:
            raise PermanentError(f"{PARTNER}: draft folder {folder_id} has no START task",
                                 partner=PARTNER)
        path = f"{await self._desk_path()}/folder/{folder_id}/task/{task.task_id}/start"
        params = {"publicAnnotation": "", "privateAnnotation": "",
                  "metadata": dict(metadata or {})}  # SimpleTaskParams

        async def go() -> None:
            raise_for_status(await self._send("PUT", path, json=params), PARTNER)

        await call(PARTNER, go)

    async def download(self, folder_id: str) -> tuple[bytes, bundle.FolderBundle]:
        """The folder's ZIP (documents, signatures, PREMIS, slip), raw and split."""
        data = await self._bytes(f"{await self._desk_path()}/folder/{folder_id}/zip",
                                 "application/octet-stream")
        try:
            return data, bundle.read(data)
        except bundle.BundleError as exc:
            raise PermanentError(f"{PARTNER}: folder {folder_id}: unreadable ZIP: {exc}",
                                 partner=PARTNER) from None

    async def delete(self, folder_id: str) -> bool:
        """Delete a finished or rejected folder; False when it was already gone."""
        async def go() -> bool:
            resp = await self._send("DELETE", f"{await self._desk_path()}/folder/{folder_id}")
            if resp.status_code == 404:
                return False
            raise_for_status(resp, PARTNER)
            return True

        return await call(PARTNER, go)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()


def _last_page(body: dict[str, Any], page: int) -> bool:
    """Whether ``page`` is the last page (``totalPages`` as Pastell reads it, else ``last``)."""
    total = body.get("totalPages")
    if total is None:
        return bool(body.get("last", True))
    return page + 1 >= int(total)

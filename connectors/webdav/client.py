"""WebDAV deposit: one collection per tenant and document (or any folder, e.g. one per agent
in a personal space, with ``deposit_folder``), ``metadata.json`` last.

Before writing, the client asks the server: a document whose ``metadata.json``
exists is already deposited, and a file already there with the same SHA-256
(``OC-Checksum``, as Nextcloud reports it) is not sent again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from connectors.deposit import DepositFile, side_by_side
from connectors.frames import aiter_chunks
from connectors.http import call, raise_for_status, resolve_url

PARTNER = "webdav"
RESERVED = ("metadata.json",)  # written beside the files: a finished deposit


class WebdavDeposit:
    """Deposit a document's files and metadata into a WebDAV server."""

    def __init__(self, base_url: str, *, username: str | None = None,
                 password: str | None = None, timeout: float = 10.0, root: str = "") -> None:
        auth = httpx.BasicAuth(username, password or "") if username else None
        self.base_url = base_url.rstrip("/")
        self.root = [p for p in root.split("/") if p]  # collections above every deposit
        self.http = httpx.AsyncClient(auth=auth, timeout=timeout)

    @classmethod
    def from_options(cls, options: dict[str, Any], *, var_dir: Path) -> WebdavDeposit:
        return cls(resolve_url(options["url"], var_dir), username=options.get("username"),
                   password=options.get("password"), timeout=float(options.get("timeout", 10)),
                   root=str(options.get("root", "")))

    def _url(self, *parts: str) -> str:
        return "/".join([self.base_url, *(quote(p, safe="") for p in parts)])

    async def lookup(self, tenant: str, doc_id: str) -> dict[str, Any] | None:
        """The metadata of an earlier finished deposit of this document, if any."""
        return await self.lookup_folder([tenant, doc_id])

    async def deposit(self, tenant: str, doc_id: str, files: list[DepositFile],
                      metadata: dict[str, Any]) -> dict[str, Any]:
        """Write the files (unless already there) then ``metadata.json``; return a receipt."""
        return await self.deposit_folder([tenant, doc_id], files, metadata)

    async def lookup_folder(self, folder: list[str]) -> dict[str, Any] | None:
        """The receipt of an earlier finished deposit into ``folder`` (under the root)."""
        parts = [*self.root, *folder]

        async def get() -> httpx.Response:
            return await self.http.get(self._url(*parts, "metadata.json"))

        resp = await call(PARTNER, get)
        if resp.status_code == 404:
            return None
        raise_for_status(resp, PARTNER)
        return {"location": self._url(*parts), "metadata": resp.json(),
                "deposited_at": resp.headers.get("Last-Modified", "")}

    async def deposit_folder(self, folder: list[str], files: list[DepositFile],
                             metadata: dict[str, Any]) -> dict[str, Any]:
        """Deposit into ``folder`` (collections created as needed), ``metadata.json`` last."""
        parts = [*self.root, *folder]
        for depth in range(1, len(parts) + 1):
            await self._mkcol(*parts[:depth])
        sent = []
        names = side_by_side((f.name for f in files), RESERVED)
        for f, name in zip(files, names, strict=True):
            if await self._has(*parts, name, sha256=f.sha256):
                continue
            # a streamed body cannot be re-sent by a quick retry: the step is retried instead
            await self._put(aiter_chunks(f.chunks), f.sha256, *parts, name)
            sent.append(name)
        body = json.dumps(metadata, ensure_ascii=False, sort_keys=True).encode()
        await self._put_small(body, *parts, "metadata.json")
        return {"location": self._url(*parts), "files": names,
                "sent": sent, "deposited_at": datetime.now(UTC).isoformat()}

    async def _put_small(self, body: bytes, *parts: str) -> None:
        """PUT a small body, asking first on every try whether it already arrived."""
        sha256 = hashlib.sha256(body).hexdigest()

        async def ask_then_put() -> None:
            if not await self._has(*parts, sha256=sha256):
                await self._put(body, sha256, *parts)

        await call(PARTNER, ask_then_put)

    async def _mkcol(self, *parts: str) -> None:
        async def mkcol() -> httpx.Response:
            return await self.http.request("MKCOL", self._url(*parts) + "/")

        resp = await call(PARTNER, mkcol)
        if resp.status_code not in (201, 405):  # 405: the collection exists
            raise_for_status(resp, PARTNER)

    async def _has(self, *parts: str, sha256: str) -> bool:
        async def head() -> httpx.Response:
            return await self.http.head(self._url(*parts))

        resp = await call(PARTNER, head)
        if resp.status_code == 404:
            return False
        raise_for_status(resp, PARTNER)
        return resp.headers.get("OC-Checksum", "").lower() == f"sha256:{sha256}"

    async def _put(self, content: AsyncIterator[bytes] | bytes, sha256: str | None,
                   *parts: str) -> None:
        headers = {"OC-Checksum": f"SHA256:{sha256}"} if sha256 else {}

        async def put() -> httpx.Response:
            return await self.http.put(self._url(*parts), content=content, headers=headers)

        raise_for_status(await call(PARTNER, put, attempts=1), PARTNER)

    async def aclose(self) -> None:
        await self.http.aclose()

"""A WebDAV server (the subset document stores use) with failure injection.

MKCOL, PUT, GET, HEAD, DELETE and a Depth-1 PROPFIND; it answers
``OC-Checksum: SHA256:...`` like Nextcloud, and counts PUTs per path so tests
can prove each file was written once.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from xml.sax.saxutils import escape

from fastapi import FastAPI, Request, Response

from connectors.simulator import (
    FailurePlan,
    HttpSimulator,
    SubmissionCounter,
)


@dataclass
class WebdavStore:
    """In-memory tree: collections and files by path."""

    files: dict[str, bytes] = field(default_factory=dict)
    collections: set[str] = field(default_factory=lambda: {""})
    lock: threading.Lock = field(default_factory=threading.Lock)


class WebdavSimulator(HttpSimulator):
    """The app, its store, its failure plan and its PUT counter."""

    title = "WebDAV simulator"

    def counts(self) -> dict[str, Any]:
        return {"puts": self.puts.snapshot(), "duplicates": self.puts.duplicates()}


    def __init__(self, failures: FailurePlan | None = None) -> None:
        self.store = WebdavStore()
        super().__init__(failures)
        self.puts = SubmissionCounter()
        self.forbidden: str | None = None  # path prefix answered 403 (permissions)
        self.app = self._build()

    def _build(self) -> FastAPI:
        app = self.new_app()
        sim = self

        @app.post("/_sim/forbid")
        async def forbid(rule: dict) -> dict:
            sim.forbidden = rule.get("prefix")
            return rule

        @app.api_route("/{path:path}", methods=["GET", "HEAD", "PUT", "MKCOL", "DELETE",
                                                 "PROPFIND"])
        async def dav(path: str, request: Request) -> Response:
            outcome = sim.failures.draw()
            if outcome == "error":
                return Response(status_code=503, content="injected failure")
            if sim.forbidden is not None and path.startswith(sim.forbidden):
                return Response(status_code=403, content="forbidden: no write permission")
            handler = getattr(sim, f"_{request.method.lower()}")
            response = await handler(path.strip("/"), request)
            if outcome == "timeout":  # the effect happened, the answer is lost
                await asyncio.sleep(sim.failures.timeout_seconds)
            return response

        return app

    async def _mkcol(self, path: str, request: Request) -> Response:
        with self.store.lock:
            if path in self.store.collections or path in self.store.files:
                return Response(status_code=405)
            if _parent(path) not in self.store.collections:
                return Response(status_code=409)
            self.store.collections.add(path)
        return Response(status_code=201)

    async def _put(self, path: str, request: Request) -> Response:
        body = await request.body()
        expected = request.headers.get("OC-Checksum", "")
        digest = hashlib.sha256(body).hexdigest()
        if expected and expected.lower() != f"sha256:{digest}":
            return Response(status_code=400, content="checksum mismatch")
        with self.store.lock:
            if _parent(path) not in self.store.collections:
                return Response(status_code=409)
            existed = path in self.store.files
            self.store.files[path] = body
        self.puts.add(path)
        return Response(status_code=204 if existed else 201)

    async def _get(self, path: str, request: Request) -> Response:
        data = self.store.files.get(path)
        if data is None:
            return Response(status_code=404)
        return Response(content=data, headers=_file_headers(data))

    async def _head(self, path: str, request: Request) -> Response:
        data = self.store.files.get(path)
        if data is None:
            return Response(status_code=200 if path in self.store.collections else 404)
        return Response(headers=_file_headers(data))

    async def _delete(self, path: str, request: Request) -> Response:
        with self.store.lock:
            found = self.store.files.pop(path, None) is not None
        return Response(status_code=204 if found else 404)

    async def _propfind(self, path: str, request: Request) -> Response:
        if path not in self.store.collections and path not in self.store.files:
            return Response(status_code=404)
        prefix = f"{path}/" if path else ""
        names = [p for p in [*self.store.files, *self.store.collections]
                 if p == path or (p.startswith(prefix) and "/" not in p[len(prefix):] and p)]
        items = "".join(_propstat(p, self.store.files.get(p)) for p in sorted(names))
        body = f'<?xml version="1.0"?><d:multistatus xmlns:d="DAV:">{items}</d:multistatus>'
        return Response(content=body, status_code=207, media_type="application/xml")



def _parent(path: str) -> str:
    return path.rpartition("/")[0]


def _file_headers(data: bytes) -> dict[str, str]:
    digest = hashlib.sha256(data).hexdigest()
    return {"OC-Checksum": f"SHA256:{digest}", "ETag": f'"{digest[:16]}"',
            "Content-Length": str(len(data)), "Last-Modified": formatdate(usegmt=True)}


def _propstat(path: str, data: bytes | None) -> str:
    kind = "<d:resourcetype/>" if data is not None else \
        "<d:resourcetype><d:collection/></d:resourcetype>"
    size = f"<d:getcontentlength>{len(data)}</d:getcontentlength>" if data is not None else ""
    return (f"<d:response><d:href>/{escape(path)}</d:href><d:propstat><d:prop>{kind}{size}"
            "</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>")

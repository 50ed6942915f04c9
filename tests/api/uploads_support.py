"""Calls of the upload and push routes for the isolation matrix: each first makes what it
acts on (an upload by its owner, a subscription by an admin), so only the caller's token
decides the answer."""

from __future__ import annotations

from typing import Any

import httpx

from bus.webhooks.subscriptions import SubscriptionStore
from workers.common.demo import minimal_pdf

CHUNK = minimal_pdf("uploaded in chunks")


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def open_upload(http: httpx.Client, token: str | None, tenant: str, size: int = len(CHUNK),
                name: str = "scan.pdf") -> httpx.Response:
    return http.post("/v1/uploads", headers=_auth(token),
                     json={"tenant": tenant, "name": name, "size": size})


def send(http: httpx.Client, token: str | None, location: str, offset: int, data: bytes
         ) -> httpx.Response:
    return http.patch(location, headers=_auth(token) | {"Upload-Offset": str(offset)},
                      content=data)


def call_upload_route(http: httpx.Client, method: str, path: str, token: str | None, *,
                      owner: str, tenant: str) -> httpx.Response:
    """``method path`` as ``token``, on an upload ``owner`` opened on ``tenant``."""
    if method == "post" and path == "/v1/uploads":
        return open_upload(http, token, tenant)
    opened = open_upload(http, owner, tenant)
    assert opened.status_code == 201, opened.text
    location, upload_id = opened.headers["Location"], opened.json()["id"]
    if method == "head":
        return http.head(location, headers=_auth(token))
    if method == "patch":
        return send(http, token, location, 0, CHUNK)
    assert send(http, owner, location, 0, CHUNK).status_code == 204
    return http.post("/v1/documents/uploaded", headers=_auth(token), json={
        "flow": "document", "tenant": tenant, "metadata": {"title": "Scan"},
        "uploads": [upload_id]})


# where the isolation matrix's subscriptions point: a closed loopback port, refused at
# once (an unresolvable host would hold the session's webhook service in DNS timeouts);
# they are removed after the matrix (``remove_matrix_hooks``)
MATRIX_HOOK = "http://127.0.0.1:9/matrix-hook"


def remove_matrix_hooks(store: Any) -> int:
    """Remove the subscriptions the matrix made; how many there were."""
    subs = SubscriptionStore(store)
    found = [s for s in subs.list() if s.url == MATRIX_HOOK]
    for sub in found:
        subs.remove(sub.id)
    return len(found)


def call_push_route(http: httpx.Client, method: str, path: str, token: str | None, *,
                    admin: str, tenant: str) -> httpx.Response:
    """``method path`` as ``token``: webhooks of ``tenant`` (one made by ``admin``), or the
    first answer of its event stream."""
    if path == "/v1/events":
        with http.stream("GET", path, params={"tenant": tenant}, headers=_auth(token)) as got:
            if got.status_code != 200:
                got.read()
            return got
    if method == "get":
        return http.get(path, headers=_auth(token))
    body = {"tenant": tenant, "url": MATRIX_HOOK, "events": ["document.*"]}
    if method == "post":
        return http.post(path, headers=_auth(token), json=body)
    made = http.post("/v1/webhooks", headers=_auth(admin), json=body)
    assert made.status_code == 201, made.text
    return http.delete(path.replace("{sub_id}", made.json()["id"]), headers=_auth(token))

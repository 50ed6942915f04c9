"""The HTTP API refuses hostile metadata and files at its door, naming the field, and
takes a normal document right after (the session's ``demat serve``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from bus.identity import IdentityStore
from bus.runtime import Runtime
from bus.settings import Settings
from workers.common.demo import minimal_pdf

pytestmark = pytest.mark.stack
CITY = "216900910"
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture(scope="module")
def http(api: str, settings: Settings, services) -> Iterator[httpx.Client]:  # type: ignore[no-untyped-def]
    runtime = Runtime(settings)
    ids = IdentityStore.of(runtime)
    login = f"hostile-{uuid.uuid4().hex[:6]}"
    ids.add_user(login, CITY, "producer")
    token = ids.create_token(login, name="hostile")[0]
    with httpx.Client(base_url=api, timeout=60,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def _multipart(http: httpx.Client, metadata: str, name: str = "a.pdf",
               data: bytes = minimal_pdf("x"), flow: str = "document") -> httpx.Response:
    return http.post("/v1/documents", data={"flow": flow, "tenant": CITY, "metadata": metadata},
                     files=[("files", (name, data, "application/pdf"))])


# (name, request, field named, words of the reason)
HOSTILE = [
    ("deep-array-metadata", lambda h: _multipart(h, '{"x": ' + DEEP + "}"), "metadata",
     "nested deeper"),
    ("deep-object-metadata", lambda h: _multipart(h, json.dumps(
        {"title": "t", "x": json.loads("[" * 30 + "]" * 30)})), "metadata", "nested deeper"),
    ("metadata-over-256k", lambda h: _multipart(h, json.dumps(
        {"title": "t", "description": "x" * 300_000})), "metadata", "over"),
    ("deep-json-body", lambda h: h.post("/v1/documents/uploaded", content=(
        '{"flow": "document", "tenant": "' + CITY + '", "uploads": ["x"], "metadata": {"x": '
        + DEEP + "}}").encode(), headers={"Content-Type": "application/json"}), None, ""),
    ("invoice-over-its-limit", lambda h: _multipart(
        h, '{"title": "F"}', "f.xml", b"<Invoice>" + b" " * (33 * 1024 * 1024) + b"</Invoice>",
        "invoice"), "files[0]", "at most 33554432"),
]


@pytest.mark.parametrize(("name", "call", "field", "reason"), HOSTILE,
                         ids=[h[0] for h in HOSTILE])
def test_hostile_request_refused_then_a_normal_one_accepted(
        http: httpx.Client, name: str, call, field: str | None, reason: str) -> None:  # type: ignore[no-untyped-def]
    got = call(http)
    assert got.status_code in (400, 413, 422), (got.status_code, got.text[:300])
    assert "RecursionError" not in got.text and "Traceback" not in got.text
    if field is not None:
        assert got.json()["error"]["field"] == field, got.text[:300]
        assert reason in got.text, got.text[:300]
    normal = _multipart(http, '{"title": "Courrier", "archive": false}', "courrier.pdf")
    assert normal.status_code == 202, normal.text

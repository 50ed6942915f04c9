"""Actes and dead letters made through the HTTP API for the operator and archivist
routes' tests, and those routes' calls for the isolation matrix.

A dead letter comes from an acte whose subject carries the S²LOW simulator's
``[sim:anomaly]`` marker: the prefecture refuses it, the document ends in error at step
``acknowledgement`` and is dead-lettered (nothing global is changed on the simulator).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import date
from typing import Any

import httpx

from workers.common.demo import minimal_pdf

ANOMALY = "[sim:anomaly]"
FINISHED = ("completed", "error", "rejected")


def auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def submit_acte(http: httpx.Client, token: str, tenant: str, subject: str = "Vote des tarifs"
                ) -> str:
    """An acte (one PDF) submitted by ``token``; its document id."""
    number = f"OP{uuid.uuid4().hex[:10].upper()}"
    meta = {"nature": 1, "number": number, "decision_date": date.today().isoformat(),
            "subject": subject, "classification": "7.1", "classification_date": "2025-01-01",
            "deposit": False}
    sent = http.post("/v1/documents", headers=auth(token), data={
        "flow": "acte", "tenant": tenant, "metadata": json.dumps(meta)},
        files=[("files", ("acte.pdf", minimal_pdf(f"Acte {number}"), "application/pdf"))])
    assert sent.status_code == 202, sent.text
    return sent.json()["id"]


def finished(http: httpx.Client, token: str, doc_id: str, timeout: float = 240) -> dict:
    """The document's state once it has finished (completed, error or rejected)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = http.get(f"/v1/documents/{doc_id}", headers=auth(token))
        if got.status_code == 200 and got.json()["state"] in FINISHED:
            return got.json()
        time.sleep(1)
    raise AssertionError(f"{doc_id} did not finish in {timeout} s")


def letter_of(http: httpx.Client, token: str, doc_id: str, timeout: float = 60) -> dict:
    """The open dead letter of document ``doc_id``, as ``token`` lists it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = http.get("/v1/dead-letters", headers=auth(token), params={"flow": "acte"})
        assert got.status_code == 200, got.text
        found = [r for r in got.json()["dead_letters"] if r["doc_id"] == doc_id]
        if found:
            return found[0]
        time.sleep(1)
    raise AssertionError(f"no dead letter of {doc_id} after {timeout} s")


def dead_letters(http: httpx.Client, producer: str, operator: str, tenant: str, count: int
                 ) -> list[dict]:
    """``count`` open dead letters of ``tenant`` (refused actes sent by ``producer``)."""
    ids = [submit_acte(http, producer, tenant, f"Acte refusé {ANOMALY}") for _ in range(count)]
    for doc_id in ids:
        assert finished(http, producer, doc_id)["state"] == "error"
    return [letter_of(http, operator, doc_id) for doc_id in ids]


def call_ops_route(http: httpx.Client, method: str, path: str, token: str | None,
                   ctx: dict[str, Any]) -> httpx.Response | None:
    """``method path`` as ``token`` on the objects of ``ctx`` (``letter``: a dead letter
    for every action but discard, ``discarded``: one for discard, ``acte``: an
    acknowledged acte); ``None`` for a route that is not an operator's or archivist's."""
    headers = auth(token)
    if path == "/v1/dead-letters/replay":
        return http.post(path, headers=headers, json={"ids": [ctx["letter"]], "dry_run": True})
    if path == "/v1/dead-letters/discard":
        return http.post(path, headers=headers, json={"ids": [ctx["discarded"]],
                                                      "reason": "isolation matrix"})
    if path.startswith("/v1/dead-letters"):
        return http.request(method, path.replace("{dlq_id}", ctx["letter"]), headers=headers)
    if path.startswith("/v1/actes/"):
        url = path.replace("{doc_id}", ctx["acte"])
        if path.endswith("/reply"):
            return http.post(url, headers=headers, files=[
                ("files", ("reponse.pdf", minimal_pdf("Réponse"), "application/pdf"))])
        if path.endswith("/cancel"):
            return http.post(url, headers=headers, json={"reason": "isolation matrix"})
        return http.request(method, url, headers=headers)
    return None

"""Retries through delay topics, dead letters and operator replay, on the real stack."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from bus.client import DematClient
from bus.dev.launcher import Services, wait_until
from bus.index import Index
from bus.settings import Settings
from schemas.messages import DocState

pytestmark = pytest.mark.stack
DAV_TENANT = "214502494"  # its GED is the WebDAV simulator
FOLDER_TENANT = "216900910"


def _sim(settings: Settings, name: str) -> str:
    return json.loads((settings.var_dir / "simulators.json").read_text())[name]


def _wait_sims(settings: Settings) -> None:
    assert wait_until(lambda: (settings.var_dir / "simulators.json").exists(), 30)


async def _submit(client: DematClient, tmp_path: Path, tenant: str, text: str) -> str:
    path = tmp_path / f"{text}.txt"
    path.write_text(text)
    receipt = await client.submit("document", [path], tenant=tenant, metadata={"title": text})
    return receipt.doc_id


def _events(settings: Settings, doc_id: str) -> list[dict]:
    return Index(settings.database).events(doc_id)


def test_transient_failures_retry_through_delay_topics_without_blocking(
        settings: Settings, services: Services, tmp_path: Path) -> None:
    _wait_sims(settings)
    dav = _sim(settings, "webdav")
    httpx.post(f"{dav}/_sim/failures", json={"error_rate": 1.0})

    async def go() -> tuple:
        async with DematClient(settings) as client:
            stuck = await _submit(client, tmp_path, DAV_TENANT, "retried")
            assert wait_until(lambda: sum(
                e["type"] == "step-failed" for e in _events(settings, stuck)) >= 2, 60)
            # the failing document waits in a delay topic; others keep flowing
            other = await _submit(client, tmp_path, FOLDER_TENANT, "flowing")
            other_state = await client.wait(other, 60)
            httpx.post(f"{dav}/_sim/failures", json={"error_rate": 0.0})
            return other_state, await client.wait(stuck, 90)

    try:
        other_state, stuck_state = asyncio.run(go())
    finally:
        httpx.post(f"{dav}/_sim/failures", json={"error_rate": 0.0})
    assert other_state.state == DocState.COMPLETED
    assert stuck_state.state == DocState.COMPLETED
    assert stuck_state.record("deposit").attempts >= 2
    delays = [e["detail"]["delay_s"] for e in _events(settings, stuck_state.doc_id)
              if e["type"] == "step-started" and e["step"] == "deposit"]
    assert delays[0] == 0 and all(d > 0 for d in delays[1:])


def test_permanent_error_is_dead_lettered_then_replayed_by_an_operator(
        settings: Settings, services: Services, demat, tmp_path: Path) -> None:
    _wait_sims(settings)
    dav = _sim(settings, "webdav")
    httpx.post(f"{dav}/_sim/forbid", json={"prefix": DAV_TENANT})
    try:
        async def submit() -> str:
            async with DematClient(settings) as client:
                doc_id = await _submit(client, tmp_path, DAV_TENANT, "forbidden")
                state = await client.wait(doc_id, 60)
                assert state.state == DocState.ERROR
                assert state.error.error_class == "PermanentError" and "403" in state.error.message
                return doc_id

        doc_id = asyncio.run(submit())
        index = Index(settings.database)
        assert wait_until(lambda: any(d["doc_id"] == doc_id for d in index.dead_letters()), 30)
        listed = json.loads(demat("dlq", "list", "--tenant", DAV_TENANT, "--json").stdout)
        letter = next(r for r in listed if r["doc_id"] == doc_id)
        assert letter["step"] == "deposit" and letter["attempts"] == 1
        shown = json.loads(demat("dlq", "show", letter["id"]).stdout)
        # the record that carried the task: validate's, deposit being chained after it
        assert shown["source"]["topic"].endswith((".step.deposit", ".step.validate"))
        assert shown["flow"] == "document" and shown["error"]["retryable"] is False
        assert shown["first_failure_at"] and shown["last_failure_at"]
    finally:
        httpx.post(f"{dav}/_sim/forbid", json={"prefix": None})

    dry = demat("dlq", "replay", letter["id"], "--dry-run")
    assert dry.returncode == 0 and "would replay" in dry.stdout
    # the actor is the token's identity, never free text; a token without the role is refused
    assert demat("users", "add", "alice", "--tenant", DAV_TENANT, "--role", "operator"
                 ).returncode == 0
    assert demat("users", "add", "bob", "--tenant", DAV_TENANT, "--role", "archivist"
                 ).returncode == 0
    bob = demat("tokens", "create", "bob").stdout.strip()
    refused = demat("dlq", "replay", letter["id"], env={"DEMAT_TOKEN": bob})
    assert refused.returncode != 0 and "may not replay" in refused.stderr
    secret = demat("tokens", "create", "alice", "--name", "replays").stdout.strip()
    run = demat("dlq", "replay", letter["id"], env={"DEMAT_TOKEN": secret})
    assert run.returncode == 0, run.stderr
    token_id = secret.removeprefix("dmt_").split(".")[0]

    async def wait() -> DocState:
        async with DematClient(settings) as client:
            return (await client.wait(doc_id, 60)).state

    assert asyncio.run(wait()) == DocState.COMPLETED
    assert wait_until(lambda: _events(settings, doc_id)[-1]["type"] == "completed", 30)
    replay = next(e for e in _events(settings, doc_id) if e["type"] == "replayed")
    assert replay["actor"] == f"alice (token {token_id})"
    assert replay["detail"]["dlq_id"] == letter["id"]
    assert wait_until(lambda: index.dead_letter(letter["id"])["status"] == "replayed", 30)
    again = demat("dlq", "replay", letter["id"])
    assert again.returncode != 0 and "already replayed" in again.stderr
    # a CLI submission is journaled as its submitter too: the token's identity, else the OS user
    note = tmp_path / "note.txt"
    note.write_text("note de service")
    for env, actor in (({"DEMAT_TOKEN": secret}, f"alice (token {token_id})"),
                       ({}, "@")):
        sent = demat("submit", "document", str(note), "--tenant", DAV_TENANT, "--meta",
                     f"title=Note {actor}", "--json", env=env)
        assert sent.returncode == 0, sent.stderr
        sent_id = json.loads(sent.stdout)["id"]
        assert wait_until(lambda i=sent_id: _events(settings, i), 30)
        submitted = _events(settings, sent_id)[0]
        assert submitted["type"] == "submitted" and actor in submitted["actor"]
    bad = demat("submit", "document", str(note), "--tenant", DAV_TENANT, "--meta", "title=x",
                env={"DEMAT_TOKEN": "dmt_0000000000000000." + "x" * 43})
    assert bad.returncode != 0 and "DEMAT_TOKEN: unknown token" in bad.stderr


def test_poison_message_is_dead_lettered_and_the_consumer_goes_on(
        settings: Settings, services: Services, tmp_path: Path) -> None:
    junk = os.urandom(64)

    async def go() -> DocState:
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap)
        await producer.start()
        try:
            for partition in range(settings.partitions):
                await producer.send_and_wait("demat.step.validate", junk, partition=partition)
        finally:
            await producer.stop()
        async with DematClient(settings) as client:
            doc_id = await _submit(client, tmp_path, FOLDER_TENANT, "after-poison")
            return (await client.wait(doc_id, 60)).state

    assert asyncio.run(go()) == DocState.COMPLETED
    index = Index(settings.database)
    assert wait_until(lambda: len([
        r for r in index.dead_letters(step=None) if r["doc_id"] is None]) >= settings.partitions,
        30)
    letter = next(r for r in index.dead_letters() if r["doc_id"] is None)
    full = index.dead_letter(letter["id"])
    import base64

    assert base64.b64decode(full["raw"]) == junk
    assert full["source"]["topic"] == "demat.step.validate"

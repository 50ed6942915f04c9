"""No poison on the real stack: an exception nobody anticipated, raised for one message
in intake, the router or a step, is that document's failure (rejected, or in error and
dead-lettered, the exception class named) and the next document completes."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord

from bus.broker import encode, make_broker
from bus.client import DematClient
from bus.dev.launcher import Services, wait_until
from bus.index import Index
from bus.runtime import Runtime
from bus.services.router import Router
from bus.settings import Settings
from schemas.messages import Accepted, DocState, DocumentState
from tests.plugins.traps import TrapSprung
from workers.finance.demo import DEMO_BUYER, DemoInvoice, tenant_party, ubl_xml

pytestmark = pytest.mark.stack
TENANT = "216900910"


async def _submit_all(settings: Settings, tmp: Path, docs: list[tuple[str, str, bytes, dict]],
                      timeout: float = 90) -> list[DocumentState | None]:
    """Submit ``(flow, file name, content, metadata)`` in order, then wait for each."""
    async with DematClient(settings) as client:
        ids = []
        for flow, name, data, meta in docs:
            path = tmp / name
            path.write_bytes(data)
            ids.append((await client.submit(flow, [path], tenant=TENANT, metadata=meta)).doc_id)
        return [await client.wait(doc_id, timeout) for doc_id in ids]


def _trap(trap: str) -> tuple[str, str, bytes, dict]:
    return ("trap", f"{trap}-{time.time_ns()}.txt", f"trap {trap}\n".encode(),
            {"title": f"trap {trap}", "trap": trap})


def _letters(settings: Settings, doc_id: str) -> list[dict]:
    return [d for d in Index(settings.database).dead_letters() if d["doc_id"] == doc_id]


def test_unforeseen_exception_at_intake_rejects_that_document_only(
        settings: Settings, services: Services, tmp_path: Path) -> None:
    bad, good = asyncio.run(_submit_all(settings, tmp_path, [_trap("intake"), _trap("none")]))
    assert bad is not None and bad.state == DocState.REJECTED
    assert bad.error.error_class == "TrapSprung"
    assert bad.error.message == "intake trap sprung"
    assert good is not None and good.state == DocState.COMPLETED


def test_ubl_invoice_with_an_external_entity_is_rejected_and_intake_goes_on(
        settings: Settings, services: Services, tmp_path: Path) -> None:
    """The issue's case: lxml's ``XMLSchemaValidateError`` (not a ``SubmissionError``)
    made intake read its batch again forever."""
    stamp = time.time_ns() % 10**9
    xml = ubl_xml(DemoInvoice(f"XXE{stamp}", tenant_party(TENANT, "Ville"), DEMO_BUYER,
                              label="Fournitures"))
    head, _, rest = xml.partition(b"?>")
    hostile = (head + b'?>\n<!DOCTYPE Invoice [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
               + rest.replace(b">Fournitures<", b">&xxe;<", 1))
    assert b"&xxe;" in hostile
    bad, good = asyncio.run(_submit_all(settings, tmp_path, [
        ("invoice", f"XXE{stamp}.xml", hostile, {"title": "Facture XXE"}),
        _trap("none")]))
    assert bad is not None and bad.state == DocState.REJECTED
    # today the exception named; a refusal of the entity itself (field files[0]) is as good
    assert bad.error.error_class == "XMLSchemaValidateError" or (
        bad.error.error_class == "SubmissionError" and bad.error.field == "files[0]"), bad.error
    assert good is not None and good.state == DocState.COMPLETED


def test_unforeseen_exception_in_a_step_dead_letters_that_document_only(
        settings: Settings, services: Services, tmp_path: Path) -> None:
    bad, good = asyncio.run(_submit_all(settings, tmp_path, [_trap("step"), _trap("none")]))
    assert bad is not None and bad.state == DocState.ERROR
    assert bad.error.error_class == "TrapSprung" and bad.error.message == "step trap sprung"
    assert bad.record("spring").attempts == 1  # not retried: a bug is no blip
    assert good is not None and good.state == DocState.COMPLETED
    assert wait_until(lambda: _letters(settings, bad.doc_id), 30)
    [letter] = _letters(settings, bad.doc_id)
    assert letter["error_class"] == "TrapSprung" and letter["step"] == "spring"


def test_unforeseen_exception_in_the_router_dead_letters_that_document_only(
        settings: Settings, services: Services, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A router batch of two new documents whose first makes the engine raise: the batch
    is applied document by document; the bad one ends in error, the other completes (its
    steps' results go to the bus's own router, which takes over its saved state)."""
    runtime = Runtime(settings)

    async def go() -> tuple[DocumentState | None, DocumentState | None]:
        async with DematClient(settings) as client:
            envs = [client.prepare("trap", [_file(tmp_path, n)], tenant=TENANT,
                                   metadata={"title": n}) for n in ("bad", "good")]
            broker = make_broker(settings)
            await broker.connect()
            try:
                router = Router(runtime, broker)
                accepted = router.engine.on_accepted

                def on_accepted(state, msg):
                    if msg.doc_id == envs[0].id:
                        raise TrapSprung("router trap sprung")
                    return accepted(state, msg)

                monkeypatch.setattr(router.engine, "on_accepted", on_accepted)
                await router.handle_batch([_record(runtime, Accepted(doc_id=e.id, envelope=e))
                                           for e in envs])
            finally:
                await broker.stop()
            return await client.wait(envs[0].id, 30), await client.wait(envs[1].id, 90)

    bad, good = asyncio.run(go())
    assert bad is not None and bad.state == DocState.ERROR
    assert bad.error.error_class == "TrapSprung" and bad.error.message == "router trap sprung"
    assert good is not None and good.state == DocState.COMPLETED
    assert wait_until(lambda: _letters(settings, bad.doc_id), 30)
    assert _letters(settings, bad.doc_id)[0]["error_class"] == "TrapSprung"


def test_submit_wait_reports_a_rejection_and_its_reason(
        demat, services: Services, tmp_path: Path) -> None:
    path = _file(tmp_path, "wait-intake")
    run = demat("submit", "trap", str(path), "--tenant", TENANT, "--meta", "title=t",
                "--meta", "trap=intake", "--wait", "--timeout", "60", "--json")
    assert run.returncode == 1, run.stdout + run.stderr
    result = json.loads(run.stdout)
    assert result["state"] == "rejected"
    assert result["reason"] == "TrapSprung: intake trap sprung"


def _file(tmp: Path, name: str) -> Path:
    path = tmp / f"{name}.txt"
    path.write_text(f"{name} {time.time_ns()}\n")
    return path


def _record(runtime: Runtime, msg: Accepted) -> ConsumerRecord:
    return ConsumerRecord(topic=runtime.topics.router, partition=0, offset=-1, timestamp=0,
                          timestamp_type=0, key=msg.doc_id.encode(), value=encode(msg),
                          checksum=None, serialized_key_size=0, serialized_value_size=0,
                          headers=())

"""End to end on the real embedded stack: Tansu (Kafka protocol) + SeaweedFS (S3)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest

from bus.audit.store import SEGMENTS, JournalStore
from bus.broker import encode
from bus.client import DematClient
from bus.dev.embedded import EmbeddedStack
from bus.dev.launcher import Services
from bus.index import Index
from bus.intake import SubmissionError
from bus.runtime import Runtime
from bus.settings import Settings
from schemas.envelope import Envelope, FileRef
from schemas.messages import DocState, SubmitMessage
from workers.common.demo import minimal_pdf

pytestmark = pytest.mark.stack
TENANT = "216900910"


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


async def _submit_and_wait(settings: Settings, files: list[Path], *, key: str | None = None,
                           meta: dict | None = None, timeout: float = 90):
    async with DematClient(settings) as client:
        receipt = await client.submit("document", files, tenant=TENANT,
                                      metadata=meta or {"title": "Test"}, key=key)
        return receipt, await client.wait(receipt.doc_id, timeout)


@pytest.mark.timeout(900)  # two demo rounds and a restart of every worker
def test_demo_json_completes_every_document(demat, services: Services, settings: Settings,
                                            tmp_path: Path) -> None:
    run = demat("demo", "--json", "--timeout", "120")
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    assert len(rows) >= 2
    assert {r["state"] for r in rows} == {"completed"}
    assert {"id", "flow", "state"} <= set(rows[0])
    # a clean stop right away drains the journal: the workers stopped (the sealer after
    # them), every state's last event is sealed and checkpointed, `demat audit verify` ok
    services.stop()
    try:
        sealed = _sealed_journal(settings)
        states = Runtime(settings).states
        heads = {r["id"]: states.load_sync(r["id"]).chain_head for r in rows}
        assert all(h and h.encode() in sealed for h in heads.values()), heads
        run = demat("audit", "verify", "--json")
        report = json.loads(run.stdout)
        assert run.returncode == 0, report["problems"]
        assert not report["counts"].get("unsealed_segments"), report
    finally:  # a second `make run` on the same data: every process anew
        services.start()
    _every_exported_file_is_known_and_valid(demat, rows, tmp_path)
    again = demat("demo", "--json", "--timeout", "120")
    assert again.returncode == 0, again.stdout + again.stderr
    assert {r["state"] for r in json.loads(again.stdout)} == {"completed"}


def _sealed_journal(settings: Settings) -> bytes:
    journal = JournalStore(settings)
    return b"".join(journal.get(k) or b"" for k in journal.numbered(SEGMENTS, "jsonl"))


def _every_exported_file_is_known_and_valid(demat, rows: list[dict], tmp_path: Path) -> None:
    """``demat inspect`` on every file ``demat export`` writes for every demo document."""
    paths: list[str] = []
    for row in rows:
        out = tmp_path / row["id"]
        assert demat("export", row["id"], "--dir", str(out)).returncode == 0
        paths += [str(p) for p in sorted(out.rglob("*")) if p.is_file()]
    run = demat("inspect", "--json", *paths)
    assert run.returncode == 0, run.stderr
    reports = json.loads(run.stdout)
    assert len(reports) == len(paths)
    bad = [(r["file"].split(str(tmp_path))[-1], r["kind"], r["messages"][:2])
           for r in reports if r["kind"] == "unknown" or r["valid"] is not True]
    assert not bad, bad


def test_document_is_deposited_journaled_and_exported(
        settings: Settings, services: Services, demat, tmp_path: Path) -> None:
    pdf = _write(tmp_path, "arrete.pdf", minimal_pdf("Arrete 42"))
    receipt, state = asyncio.run(_submit_and_wait(settings, [pdf], meta={"title": "Arrêté",
                                                                         "archive": False}))
    assert state is not None and state.state == DocState.COMPLETED
    deposit = state.record("deposit").output
    folder = Path(deposit["location"])
    assert (folder / "arrete.pdf").read_bytes() == pdf.read_bytes()
    assert json.loads((folder / "metadata.json").read_text())["metadata"]["title"] == "Arrêté"

    assert _wait_index(settings, receipt.doc_id, "completed")
    journal = demat("journal", receipt.doc_id, "--json")
    types = [e["type"] for e in json.loads(journal.stdout)]
    assert types == ["submitted", "step-started", "step-done", "step-skipped", "step-started",
                     "step-done", "step-skipped", "step-skipped", "completed"]
    # skipped: sign (meta.sign unset), archive and archive-batch (meta.archive false)

    out = tmp_path / "export"
    run = demat("export", receipt.doc_id, "--dir", str(out))
    assert run.returncode == 0, run.stderr
    assert (out / "files" / "arrete.pdf").read_bytes() == pdf.read_bytes()
    deposited = json.loads((out / "artefacts" / "deposit" / "deposit-receipt.json").read_text())
    assert deposited["deposited"]["document_id"] == receipt.doc_id  # what the store got
    assert deposited["receipt"]["location"]  # and what it answered
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest["files"]:
        data = (out / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["path"]
    status = demat("status", receipt.doc_id, "--json")
    assert json.loads(status.stdout)["state"] == "completed"


def _wait_index(settings: Settings, doc_id: str, state: str, timeout: float = 30) -> bool:
    from bus.dev.launcher import wait_until

    index = Index(settings.database)

    def done() -> bool:
        return any(d["id"] == doc_id and d["state"] == state
                   for d in index.documents(limit=100_000))

    return wait_until(done, timeout)


def test_same_key_returns_first_document_and_other_content_is_refused(
        settings: Settings, services: Services, tmp_path: Path) -> None:
    a = _write(tmp_path, "a.txt", b"first content\n")
    b = _write(tmp_path, "b.txt", b"other content\n")

    async def go() -> None:
        async with DematClient(settings) as client:
            first = await client.submit("document", [a], tenant=TENANT,
                                        metadata={"title": "A"}, key="payroll-2026-11-42")
            await client.wait(first.doc_id, 60)
            again = await client.submit("document", [a], tenant=TENANT,
                                        metadata={"title": "A"}, key="payroll-2026-11-42")
            assert again.doc_id == first.doc_id and again.duplicate
            with pytest.raises(SubmissionError, match=r"idempotency_key: .* different content"):
                await client.submit("document", [b], tenant=TENANT, metadata={"title": "A"},
                                    key="payroll-2026-11-42")

    asyncio.run(go())


def test_intake_rejects_what_a_producer_publishes_directly(
        settings: Settings, services: Services, tmp_path: Path) -> None:
    """A producer bypassing the SDK still gets a clear, journaled refusal."""
    path = _write(tmp_path, "x.txt", b"hello\n")

    async def go() -> tuple:
        async with DematClient(settings) as client:
            ref = client.runtime.store.put_path(TENANT, path)
            ghost = FileRef(sha256="c" * 64, size=5, media_type="text/plain", name="ghost.txt")
            bad_meta = Envelope(tenant=TENANT, flow="document", metadata={"titel": "typo"},
                                files=[ref])
            missing = Envelope(tenant=TENANT, flow="document", metadata={"title": "t"},
                               files=[ghost])
            for env in (bad_meta, missing):
                await client._producer.send_and_wait(
                    client.runtime.topics.submit, encode(SubmitMessage(envelope=env)),
                    key=env.id.encode())
            return (await client.wait(bad_meta.id, 60), await client.wait(missing.id, 60))

    meta_state, missing_state = asyncio.run(go())
    assert meta_state.state == DocState.REJECTED
    assert meta_state.error.field == "metadata.title"
    assert missing_state.state == DocState.REJECTED
    assert missing_state.error.field == "files[0]"
    assert "not in the object store" in missing_state.error.message


@pytest.mark.parametrize(("args", "message"), [
    (["nosuchflow", "{pdf}", "--tenant", TENANT, "--meta", "title=x"], "flow: unknown flow"),
    (["document", "{pdf}", "--tenant", "216900911", "--meta", "title=x"], "tenant"),
    (["document", "{missing}", "--tenant", TENANT, "--meta", "title=x"], "does not exist"),
    (["document", "{empty}", "--tenant", TENANT, "--meta", "title=x"], "is empty"),
    (["document", "{pdf}", "--tenant", TENANT, "--meta-file", "{badjson}"], "malformed JSON"),
    (["document", "{pdf}", "--tenant", TENANT, "--meta", "colour=blue"], "metadata.title"),
    (["document", "{pdf}", "--tenant", TENANT, "--meta", "title=x", "--sha256", "0" * 64],
     "declared sha256"),
])
def test_bad_input_is_refused_with_the_field_named(
        demat, stack: EmbeddedStack, tmp_path: Path, args: list[str], message: str) -> None:
    paths = {"pdf": _write(tmp_path, "a.pdf", minimal_pdf("x")),
             "empty": _write(tmp_path, "empty.pdf", b""),
             "badjson": _write(tmp_path, "meta.json", b"{title: oops"),
             "missing": tmp_path / "nope.pdf"}
    run = demat("submit", *[a.format(**paths) for a in args])
    assert run.returncode != 0
    assert message in run.stderr, run.stderr


def test_broker_killed_mid_flow_document_still_completes(
        settings: Settings, services: Services, stack: EmbeddedStack, tmp_path: Path) -> None:
    """The task waits on its step topic while the broker is down; nothing is lost."""
    services.stop_group("steps")
    try:
        path = _write(tmp_path, "crash.txt", b"survives a broker crash\n")

        async def submit() -> str:
            async with DematClient(settings) as client:
                receipt = await client.submit("document", [path], tenant=TENANT,
                                              metadata={"title": "crash"})
                for _ in range(150):  # until the router dispatched the first step
                    state = await client.status(receipt.doc_id)
                    if state and state.current_step == "validate":
                        return receipt.doc_id
                    await asyncio.sleep(0.2)
                raise AssertionError("document never reached its first step")

        doc_id = asyncio.run(submit())
        stack.restart_broker()
    finally:
        services.start_group("steps")

    async def wait() -> DocState | None:
        async with DematClient(settings) as client:
            state = await client.wait(doc_id, 120)
            return state.state if state else None

    assert asyncio.run(wait()) == DocState.COMPLETED


def test_restarted_workers_keep_earlier_documents(
        settings: Settings, services: Services, tmp_path: Path) -> None:
    path = _write(tmp_path, "keep.txt", b"kept across restarts\n")
    receipt, state = asyncio.run(_submit_and_wait(settings, [path]))
    assert state.state == DocState.COMPLETED
    for group in list(services.pids):
        services.stop_group(group)
        services.start_group(group)
    receipt2, state2 = asyncio.run(_submit_and_wait(settings, [_write(tmp_path, "n.txt", b"n\n")]))
    assert state2.state == DocState.COMPLETED
    assert _wait_index(settings, receipt.doc_id, "completed")
    assert _wait_index(settings, receipt2.doc_id, "completed")

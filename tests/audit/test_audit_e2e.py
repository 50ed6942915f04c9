"""The audit journal on the real bus: seal, verify, proof bundle, search, tampering."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from bus.audit.store import JournalStore, segment_key
from bus.audit.verify import verify_bus
from bus.client import DematClient
from bus.dev.launcher import Services
from bus.objectstore import ObjectStore
from bus.runtime import Runtime
from bus.settings import Settings
from schemas.messages import DocState
from tests.conftest import index_text
from tests.tamper import flip, restore
from workers.common.demo import minimal_pdf

pytestmark = pytest.mark.stack
TENANT = "216900910"
AUTHOR = "Jeanne Dupont-Audit"


def _verify(demat) -> tuple[int, dict]:
    run = demat("audit", "verify", "--json")
    assert run.stdout, run.stderr
    return run.returncode, json.loads(run.stdout)


def _wait_sealed(settings: Settings, timeout: float = 150) -> dict:
    """Until every segment is sealed and every state's head is in the journal (in-process)."""
    deadline = time.monotonic() + timeout
    while True:
        report = verify_bus(Runtime(settings)).as_dict()
        counts = report["counts"]
        settled = (counts.get("checkpoints", 0) > 0 and not counts.get("unsealed_segments")
                   and not counts.get("pending"))
        if (report["ok"] and settled) or time.monotonic() > deadline:
            return report
        time.sleep(2)


def _problems_at(report: dict, text: str) -> list[dict]:
    return [p for p in report["problems"] if text in p["where"]]


@pytest.mark.timeout(900)  # one document, then several full verifications of the bus
def test_sealed_verified_exported_searched_and_tampering_named(
        demat, services: Services, settings: Settings, tmp_path: Path) -> None:
    pdf = tmp_path / "note.pdf"
    pdf.write_bytes(minimal_pdf("Note de service audit"))

    async def submit():
        async with DematClient(settings) as client:
            receipt = await client.submit("document", [pdf], tenant=TENANT, metadata={
                "title": "Note", "category": "note-audit", "author": AUTHOR, "archive": False})
            return receipt.doc_id, await client.wait(receipt.doc_id, 300)

    doc_id, state = asyncio.run(submit())
    assert state is not None and state.state == DocState.COMPLETED, (
        state and (state.state, state.current_step, state.error))

    report = _wait_sealed(settings)
    assert report["ok"], report["problems"]
    assert not report["counts"].get("unsealed_segments") and not report["counts"].get("pending")
    code, report = _verify(demat)  # the command: exit 0, every kind of check counted
    assert code == 0 and report["ok"], report["problems"]
    assert report["counts"]["checkpoints"] >= 1 and report["counts"]["timestamps"] >= 1
    assert report["counts"]["signatures"] == report["counts"]["checkpoints"]
    assert report["counts"]["files"] >= 1 and report["counts"]["states"] >= 1

    # search: business keys, personal ones by keyed hash only
    found = json.loads(demat("search", "--key", f"author={AUTHOR.upper()}", "--json").stdout)
    assert [r["id"] for r in found] == [doc_id]
    found = json.loads(demat("search", "--key", "category=note-audit", "--tenant", TENANT,
                             "--state", "completed", "--since", "2000-01-01", "--json").stdout)
    assert [r["id"] for r in found] == [doc_id]
    bad = demat("search", "--key", "nope=1")
    assert bad.returncode == 2 and "no flow declares the search key 'nope'" in bad.stderr
    journal = JournalStore(settings)
    sealed = b"".join(journal.get(k) or b"" for k in journal.numbered("journal/segments/",
                                                                          "jsonl"))
    assert AUTHOR.encode() not in sealed
    indexed = index_text(settings.database)
    assert doc_id in indexed and AUTHOR.lower() not in indexed.lower()

    # proof bundle, checked by running its README's commands
    bundle = tmp_path / "bundle"
    run = demat("audit", "export", doc_id, "--dir", str(bundle))
    assert run.returncode == 0, run.stderr
    readme = (bundle / "README.md").read_text()
    commands = re.search(r"```sh\n(.*?)```", readme, re.S).group(1).strip().splitlines()
    assert any(c.startswith("openssl ts -verify") for c in commands)
    for command in commands:
        done = subprocess.run(command, shell=True, cwd=bundle, capture_output=True, text=True)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        if command.startswith("openssl ts"):
            assert "Verification: OK" in done.stdout
    events = (bundle / "events.jsonl").read_bytes()
    assert events.count(b"\n") >= 4 and doc_id.encode() in events
    (bundle / "events.jsonl").write_bytes(events.replace(b'"completed"', b'"rejected"', 1))
    done = subprocess.run(["python3", "verify_inclusion.py"], cwd=bundle, capture_output=True,
                          text=True)
    assert done.returncode == 1 and "FAIL" in done.stdout

    # one flipped byte in a segment, a checkpoint and a stored file: each one is named
    client = ObjectStore(settings).client
    stored = next(k for k in (o.object_name for o in client.list_objects(
        settings.bucket, prefix=f"files/{TENANT}/", recursive=True))
        if k.endswith(state.envelope.files[0].sha256))
    last = journal.numbered("journal/checkpoints/", "json")[-1]
    targets = ((journal.bucket, segment_key(1)), (journal.bucket, last),
               (settings.bucket, stored))
    originals = {}
    try:
        for bucket, key in targets:  # checkpoint 1 seals segment 1; the last one is later
            originals[bucket, key] = flip(client, bucket, key, at=40)
        code, report = _verify(demat)
    finally:
        for (bucket, key), data in originals.items():
            restore(client, bucket, key, data)
    assert code == 1 and not report["ok"]
    for _, key in targets:
        assert _problems_at(report, key), (key, report["problems"])
    report = verify_bus(Runtime(settings))
    assert report.ok, report.problems

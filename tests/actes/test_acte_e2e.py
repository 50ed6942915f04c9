"""Flow ``acte`` end to end: real embedded stack, worker processes and the S²LOW simulator."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from bus.broker import encode
from bus.client import DematClient
from bus.dev.launcher import Services, wait_until
from bus.export import export_document
from bus.runtime import Runtime
from bus.settings import Settings
from schemas.envelope import Envelope
from schemas.messages import DocState, SubmitMessage
from tests.conftest import SHARED
from workers.actes.demo import acte_documents
from workers.common.demo import minimal_pdf

pytestmark = pytest.mark.stack
TENANT = "216900910"
XSDCHECK = SHARED / "tools" / "xsdcheck.py"


def _sim(settings: Settings) -> str:
    assert wait_until(lambda: (settings.var_dir / "simulators.json").exists(), 120)
    return json.loads((settings.var_dir / "simulators.json").read_text())["s2low"]


def _meta(number: str, **changes: object) -> dict:
    return {"nature": 1, "number": number, "decision_date": date.today().isoformat(),
            "subject": "Vote des tarifs", "classification": "7.1",
            "classification_date": "2025-01-01"} | changes


async def _submit_docs(settings: Settings, docs: list[tuple[dict[str, bytes], dict]],
                       tmp: Path, tenant: str = TENANT, timeout: float = 180) -> list:
    async with DematClient(settings) as client:
        ids = []
        for i, (files, meta) in enumerate(docs):
            paths = []
            for name, data in files.items():
                (tmp / str(i)).mkdir(exist_ok=True)
                path = tmp / str(i) / name
                path.write_bytes(data)
                paths.append(path)
            ids.append((await client.submit("acte", paths, tenant=tenant, metadata=meta)).doc_id)
        return [await client.wait(doc_id, timeout) for doc_id in ids]


def test_deliberation_acknowledged_published_exported_and_schema_valid(
        settings: Settings, services: Services, demat, tmp_path: Path) -> None:
    _sim(settings)
    doc = acte_documents(0, stamp=int(time.time() * 10) % 10**8)[0]  # deliberation + annex
    (state,) = asyncio.run(_submit_docs(settings, [(doc.files, doc.metadata)], tmp_path))
    assert state.state == DocState.COMPLETED, state.error
    ack = state.record("acknowledgement").output
    number, day = doc.metadata["number"], date.today().strftime("%Y%m%d")
    assert ack["official_id"] == f"069-{TENANT}-{day}-{number}-DE"
    assert state.record("transmit").output["expected_id"] == ack["official_id"]
    published = state.record("publish").output
    assert published["published_at"] and published["published_file"].endswith("-tampon.pdf")
    folder = Path(published["publication"])
    assert json.loads((folder / "metadata.json").read_text())["official_id"] == ack["official_id"]
    assert b"Tampon S2LOW" in (folder / published["published_file"]).read_bytes()
    assert state.record("letters").status == "skipped"

    status = demat("status", state.doc_id)
    assert status.returncode == 0, status.stderr
    for fact in (f"official_id: {ack['official_id']}", "sent_at:", "received_at:",
                 "published_at:"):
        assert fact in status.stdout, status.stdout

    out = tmp_path / "export"
    assert demat("export", state.doc_id, "--dir", str(out)).returncode == 0
    names = {p.name: p for p in (out / "artefacts").rglob("*") if p.is_file()}
    envelope = next(p for n, p in names.items() if n.startswith("EACT--") and n.endswith(".xml"))
    form = names[f"{ack['official_id']}-1-1_0.xml"]
    aracte = names[f"{ack['official_id']}-1-2_0.xml"]
    assert f"{ack['official_id']}-tampon.pdf" in names
    assert any(n.endswith(".tar.gz") for n in names)

    # the operator cancels it: a document of flow acte-followup, ARAnnulation kept
    cancel = demat("acte", "cancel", state.doc_id, "--reason", "erreur matérielle", "--wait",
                   "--json", "--timeout", "180")
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    cancel_out = tmp_path / "export-cancel"
    export_document(Runtime(settings), json.loads(cancel.stdout)["id"], cancel_out)
    (request,) = (cancel_out / "files").glob("demande-annulation-*.json")
    asked = json.loads(request.read_text())
    assert asked["official_id"] == ack["official_id"] and asked["reason"] == "erreur matérielle"
    assert asked["acte_document"] == state.doc_id
    (annulation,) = (cancel_out / "artefacts").rglob(f"{ack['official_id']}-6-1_0.xml")
    (ar_annulation,) = (cancel_out / "artefacts").rglob(f"{ack['official_id']}-6-2_0.xml")

    files = [envelope, form, aracte, annulation, ar_annulation]
    check = subprocess.run([sys.executable, str(XSDCHECK), "actes", *map(str, files)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "INVALID" not in check.stdout


def test_anomaly_puts_the_acte_in_error_with_the_prefecture_reason_without_retry(
        settings: Settings, services: Services, tmp_path: Path) -> None:
    number = f"AN{int(time.time() * 10) % 10**8}"
    meta = _meta(number, subject="Acte [sim:anomaly]")
    (state,) = asyncio.run(_submit_docs(
        settings, [({"a.pdf": minimal_pdf("anomalie")}, meta)], tmp_path))
    assert state.state == DocState.ERROR
    assert state.error.error_class == "BusinessRefusal" and not state.error.retryable
    assert "anomaly 002" in state.error.message and "classification" in state.error.message
    rec = state.record("acknowledgement")
    assert rec.status == "failed" and rec.attempts == 1
    assert any(a.file.name.startswith("AnomalieActe") for a in state.artefacts)


def test_bad_actes_are_refused_at_intake_with_the_field_named(
        settings: Settings, services: Services, tmp_path: Path) -> None:
    """Published straight to the submit topic: the intake refuses and journals them."""
    future = (date.today() + timedelta(days=3)).isoformat()
    cases = [
        ({"nature": 9}, "metadata.nature", {}),
        ({"number": "bad-number"}, "metadata.number", {}),
        ({"decision_date": future}, "metadata.decision_date", {}),
        ({"classification": "7.9"}, "metadata.classification", {}),
        ({}, "files[0]", {"main": b"not a pdf, plain text\n"}),
        ({"annexes": [{"file_name": "annexe.pdf"}]}, "metadata.annexes.0.typology",
         {"annexe.pdf": minimal_pdf("annexe")}),
        ({}, "files[1]", {"annexe.pdf": minimal_pdf("annexe")}),
    ]

    async def go() -> list:
        async with DematClient(settings) as client:
            store = client.runtime.store
            envs = []
            for i, (changes, _, files) in enumerate(cases):
                main = files.get("main", minimal_pdf(f"acte {i}"))
                refs = [store.put_bytes(TENANT, main, name="acte.pdf")]
                refs += [store.put_bytes(TENANT, d, name=n, role="annex")
                         for n, d in files.items() if n != "main"]
                envs.append(Envelope(tenant=TENANT, flow="acte", files=refs,
                                     metadata=_meta(f"BAD{i}") | changes))
            for env in envs:
                await client._producer.send_and_wait(
                    client.runtime.topics.submit, encode(SubmitMessage(envelope=env)),
                    key=env.id.encode())
            return [await client.wait(env.id, 60) for env in envs]

    for state, (_, field, _) in zip(asyncio.run(go()), cases, strict=True):
        assert state.state == DocState.REJECTED, (field, state.state)
        assert state.error.field == field, (field, state.error)


def test_exactly_one_submission_per_acte_under_injected_failures(
        settings: Settings, services: Services, tmp_path: Path) -> None:
    sim = _sim(settings)
    stamp = int(time.time() * 10) % 10**7
    numbers = [f"FL{stamp}_{i}" for i in range(3)]
    docs = [({f"f{i}.pdf": minimal_pdf(f"failures {i}")}, _meta(n)) for i, n in enumerate(numbers)]
    # 5xx (before any effect) on 20% of all calls, and EVERY post hangs after its effect
    # (S²LOW took the acte, its answer is lost): the demo tenant's client gives up after 3 s
    httpx.post(f"{sim}/_sim/failures", json={"error_rate": 0.2, "seed": 7})
    httpx.post(f"{sim}/_sim/failures", json={"method": "POST", "timeout_rate": 1.0,
                                             "timeout_seconds": 3.5})
    try:
        states = asyncio.run(_submit_docs(settings, docs, tmp_path, timeout=300))
    finally:
        httpx.post(f"{sim}/_sim/failures", json={"error_rate": 0.0})
    assert [s.state for s in states] == [DocState.COMPLETED] * 3, [s.error for s in states]
    counts = httpx.get(f"{sim}/_sim/counts").json()["submissions"]
    day = date.today().strftime("%Y%m%d")
    assert [counts.get(f"{TENANT}-{day}-{n}") for n in numbers] == [1, 1, 1]
    for state in states:  # the lost answer was recovered by asking S²LOW, not by re-posting
        transmit = state.record("transmit")
        assert transmit.attempts >= 2 and transmit.output["already_transmitted"] is True

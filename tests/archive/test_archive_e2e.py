"""Archival through the real bus: demo documents as SEDA 2.1/2.2 SIPs to the simulated
As@lae, a refused transfer, and a batch of pay-slip-like documents in bounded SIPs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bus.client import DematClient
from bus.dev.launcher import Services
from bus.settings import Settings
from schemas.messages import DocState, DocumentState
from tests.conftest import SHARED
from workers.common.demo import generic_documents, minimal_pdf

pytestmark = pytest.mark.stack
XSDCHECK = SHARED / "tools" / "xsdcheck.py"
VERSION = {"216900910": "2.1", "214502494": "2.2"}


def _sae(settings: Settings) -> str:
    return json.loads((settings.var_dir / "simulators.json").read_text())["sae"]


async def _submit_all(settings: Settings, docs: list[tuple[str, list[Path], dict]],
                      timeout: float) -> list[DocumentState]:
    gate = asyncio.Semaphore(8)
    async with DematClient(settings, producer_name="archive-test") as client:
        async def one(tenant: str, paths: list[Path], meta: dict) -> str:
            async with gate:
                return (await client.submit("document", paths, tenant=tenant,
                                            metadata=meta)).doc_id

        ids = await asyncio.gather(*(one(*doc) for doc in docs))
        states = await asyncio.gather(*(client.wait(i, timeout, interval=0.5) for i in ids))
    assert all(s is not None for s in states)
    return list(states)  # type: ignore[arg-type]


def _xsdcheck(version: str, files: list[Path]) -> None:
    run = subprocess.run([sys.executable, str(XSDCHECK), f"seda-{version}", *map(str, files)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout
    assert run.stdout.count("VALID") == len(files)


def _export(demat, doc_id: str, dest: Path) -> dict[str, Path]:
    run = demat("export", doc_id, "--dir", str(dest))
    assert run.returncode == 0, run.stderr
    found = {}
    for path in (dest / "artefacts").rglob("*.xml"):
        for suffix in ("manifest", "ack", "atr"):
            if path.stem.endswith(f"-{suffix}"):
                found[suffix] = path
    return found


def test_demo_documents_archived_in_seda_21_and_22_and_refusal_is_an_error(
        settings: Settings, services: Services, demat, tmp_path: Path) -> None:
    docs = []
    for i, demo in enumerate(generic_documents(7)):
        docs.append((demo.tenant, demo.write(tmp_path / f"d{i}"), demo.metadata))
    refused = tmp_path / "refus.pdf"
    refused.write_bytes(minimal_pdf("refus"))
    docs.append(("216900910", [refused], {"title": "[sim:refuse] Courrier", "category": "x"}))
    *archived, refusal = asyncio.run(_submit_all(settings, docs, timeout=150))

    for state in archived:
        assert state.state == DocState.COMPLETED, state.error
        out = state.record("archive").output
        assert out["reply_code"] == "000" and out["archival_id"].startswith("AE_")
        version = VERSION[state.envelope.tenant]
        assert out["seda_version"] == version
        files = _export(demat, state.doc_id, tmp_path / f"export-{state.doc_id}")
        assert set(files) == {"manifest", "ack", "atr"}
        _xsdcheck(version, list(files.values()))
        manifest = files["manifest"].read_text()
        assert "journal.json" in manifest and state.envelope.metadata["title"] in manifest

    assert refusal.state == DocState.ERROR
    assert refusal.error is not None and "ReplyCode 300" in refusal.error.message
    assert refusal.error.error_class == "BusinessRefusal"
    kept = _export(demat, refusal.doc_id, tmp_path / "export-refused")
    assert "<ReplyCode>300</ReplyCode>" in kept["atr"].read_text()
    _xsdcheck("2.1", list(kept.values()))
    counts = httpx.get(f"{_sae(settings)}/_sim/counts").json()
    assert counts["duplicates"] == {}


def test_batch_of_payslip_like_documents_goes_in_bounded_sips(
        settings: Settings, services: Services, demat, tmp_path: Path) -> None:
    """60 documents of one period, at most 25 per SIP (the demo tenant's bound)."""
    period = f"2026-11-{time.time_ns()}"
    docs = []
    for i in range(60):
        path = tmp_path / f"bp-{i}.pdf"
        path.write_bytes(minimal_pdf(f"Bulletin {i} {period}"))
        docs.append(("216900910", [path], {"title": f"Bulletin de paie {i}",
                                           "category": "bulletin_paie", "deposit": False,
                                           "archive_batch": period}))
    states = asyncio.run(_submit_all(settings, docs, timeout=240))
    assert {s.state for s in states} == {DocState.COMPLETED}, \
        [s.error for s in states if s.error][:3]
    outputs = [s.record("archive-batch").output for s in states]
    assert len({o["archival_id"] for o in outputs}) == 60
    sizes: dict[str, int] = {}
    for out in outputs:
        sizes[out["batch"]] = out["batch_size"]
        assert out["reply_code"] == "000" and out["archival_id"].startswith(
            out["batch_archival_id"] + "_")
    assert sum(sizes.values()) == 60 and max(sizes.values()) <= 25 and len(sizes) >= 3

    files = _export(demat, states[0].doc_id, tmp_path / "export-member")
    _xsdcheck("2.1", list(files.values()))
    assert files["manifest"].read_text().count("<ArchiveUnit ") == sizes[outputs[0]["batch"]] + 1
    transfers = httpx.get(f"{_sae(settings)}/_sim/counts").json()
    assert transfers["duplicates"] == {}
    ours = [k for k in transfers["transfers"] if period.replace(":", "-")[:10] in k]
    assert len(ours) >= len(sizes)

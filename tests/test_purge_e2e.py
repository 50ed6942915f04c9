"""Retention on the real embedded stack: ``demat purge --dry-run`` lists a finished
document past its retention and changes nothing; ``demat purge`` removes its files and
personal data through the router, journaled as ``purged``; the journal still verifies."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from bus.dev.launcher import Services
from bus.objectstore import ObjectStore
from bus.settings import Settings
from tests.audit.test_audit_e2e import _wait_sealed
from tests.test_backup_restore import TENANT, _submit
from workers.common.demo import minimal_pdf

pytestmark = pytest.mark.stack


def _rules(path: Path, keep_days: float) -> dict[str, str]:
    path.write_text(f"rules:\n  - {{flow: document, tenant: '{TENANT}', "
                    f"keep_days: {keep_days}, after: [deposit, archive]}}\n")
    return {"DEMAT_RETENTION_FILE": str(path)}


@pytest.mark.timeout(900)
def test_purge_dry_run_then_purge_keeps_the_proofs(
        demat, services: Services, settings: Settings, tmp_path: Path) -> None:
    pdf = tmp_path / "note.pdf"
    pdf.write_bytes(minimal_pdf(f"Conservation {uuid.uuid4()}"))
    doc_id = _submit(settings, pdf)
    before = json.loads(demat("status", doc_id, "--json").stdout)
    files = [f["sha256"] for f in before["envelope"]["files"]]
    store = ObjectStore(settings)
    assert all(store.stat_file(TENANT, sha) is not None for sha in files)

    kept = _rules(tmp_path / "long.yaml", 3650)
    run = demat("purge", "--dry-run", "--id", doc_id, "--json", env=kept)
    assert run.returncode == 0 and json.loads(run.stdout)["documents"] == [], run.stderr

    due = _rules(tmp_path / "now.yaml", 0)
    run = demat("purge", "--dry-run", "--id", doc_id, "--json", env=due)
    listed = json.loads(run.stdout)["documents"]
    assert [d["doc_id"] for d in listed] == [doc_id] and listed[0]["files"] >= 1
    assert json.loads(demat("status", doc_id, "--json").stdout) == before  # nothing changed

    run = demat("purge", "--id", doc_id, "--json", env=due)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["purged"] == 1 and result["deleted_files"] >= 1, result
    after = json.loads(demat("status", doc_id, "--json").stdout)
    assert after["state"] == "completed" and set(files) <= set(after["purged"]["files"])
    assert after["purged"]["metadata"] == []  # the document model has no personal field
    assert after["envelope"]["metadata"]["title"] == "Note"
    assert {f["name"] for f in after["envelope"]["files"]} == {f"purged-{s[:12]}" for s in files}
    assert all(store.stat_file(TENANT, sha) is None for sha in files)
    purged = _journaled(demat, doc_id, "purged")
    assert len(purged) == 1 and set(files) <= set(purged[0]["detail"]["files"])
    assert purged[0]["detail"]["policy"]["keep_days"] == 0

    again = demat("purge", "--id", doc_id, "--json", env=due)  # nothing left to purge
    assert json.loads(again.stdout)["documents"] == []
    report = _wait_sealed(settings)
    assert report["ok"], report["problems"]


def test_a_bad_retention_file_is_named(demat, stack, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {flow: payslip, keep_days: -1}\n")
    run = demat("purge", "--dry-run", env={"DEMAT_RETENTION_FILE": str(bad)})
    assert run.returncode == 2 and "bad.yaml: rule 1: keep_days" in run.stderr


def _journaled(demat, doc_id: str, kind: str, timeout: float = 60) -> list[dict]:
    """The document's indexed events of ``kind``, once the journal indexer has one."""
    deadline = time.monotonic() + timeout
    while True:
        events = json.loads(demat("journal", doc_id, "--json").stdout)
        found = [e for e in events if e["type"] == kind]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(1)

"""A new flow family is a YAML file, a schema module and a package, with no bus edit.

The throwaway family ``tests/plugins/cemetery`` is loaded by the session's bus through
``DEMAT_PLUGINS`` (conftest); documents of its flow go through the real bus end to end.
"""

from __future__ import annotations

import json
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest

from bus.dev.launcher import Services
from workers.common.demo import minimal_pdf

ROOT = Path(__file__).resolve().parents[1]
TENANT = "216900910"
pytestmark = pytest.mark.stack


def _deed(tmp_path: Path, **meta: object) -> list[str]:
    pdf = tmp_path / "acte-concession.pdf"
    pdf.write_bytes(minimal_pdf(f"Concession {meta.get('concession_number')}"))
    fields = {"title": "Concession trentenaire", "concession_number": "CV-2026-117",
              "cemetery": "Cimetière de la Guillotière", "holder": "Jeanne Martin",
              "duration_years": 30, "granted_on": "2026-03-02"} | meta
    meta_file = tmp_path / "meta.json"
    meta_file.write_text(json.dumps(fields))
    return [str(pdf), "--meta-file", str(meta_file)]


def test_no_kernel_file_names_the_family() -> None:
    found = subprocess.run(["grep", "-rli", "cemetery", "bus", "schemas", "connectors",
                            "workers", "pyproject.toml"], cwd=ROOT, capture_output=True,
                           text=True)
    assert found.stdout == "", found.stdout


def test_family_registers_its_flow_steps_and_checks(demat) -> None:
    result = demat("check")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "cemetery-concession" in result.stdout


def test_concession_goes_through_the_bus(demat, services: Services, tmp_path: Path) -> None:
    result = demat("submit", "cemetery-concession", *_deed(tmp_path), "--tenant", TENANT,
                   "--key", f"concession-{tmp_path.name}", "--wait", "--timeout", "90",
                   "--json")
    assert result.returncode == 0, result.stderr + result.stdout
    doc_id = json.loads(result.stdout)["id"]
    state = json.loads(demat("status", doc_id, "--json").stdout)
    assert state["state"] == "completed"
    steps = {s["name"]: s for s in state["steps"]}
    assert [s["name"] for s in state["steps"]] == ["validate", "register", "deposit"]
    assert steps["register"]["output"] == {"register_entry": "CV-2026-117",
                                           "expires": "2056-03-02"}
    assert any(a["kind"] == "register-entry" for a in state["artefacts"])


def test_family_check_refuses_at_intake(demat, services: Services, tmp_path: Path) -> None:
    future = (date.today() + timedelta(days=3)).isoformat()
    result = demat("submit", "cemetery-concession", *_deed(tmp_path, granted_on=future),
                   "--tenant", TENANT, "--wait", "--timeout", "60", "--json")
    assert result.returncode != 0
    doc_id = json.loads(result.stdout)["id"]
    state = json.loads(demat("status", doc_id, "--json").stdout)
    assert state["state"] == "rejected"  # refused at intake
    assert state["error"]["field"] == "metadata.granted_on"


def test_family_metadata_model_names_the_field(demat, services: Services,
                                                tmp_path: Path) -> None:
    result = demat("submit", "cemetery-concession",
                   *_deed(tmp_path, concession_number="CV-2026-117\n"), "--tenant", TENANT)
    assert result.returncode == 2
    assert "metadata.concession_number" in result.stderr

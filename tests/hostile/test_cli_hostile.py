"""Hostile cases through ``demat submit`` on the embedded stack: exit 2 with the field
named and nothing a terminal would interpret (the CLI escapes what it prints); a good
document submitted right after completes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bus.dev.launcher import Services
from tests.hostile.corpus import CITY_A, base, load_cases

pytestmark = pytest.mark.stack
CLI_CASES = ("title-ansi-escape", "title-bidi-override", "file-name-escape",
             "acte-subject-osc-escape", "email-crlf-header", "invoice-in-from-a-producer")
CASES = {c.id: c for c in load_cases()}
TERMINAL_CONTROLS = ("\x1b", "\x07", "\u202e", "\r")


def _submit(demat, folder: Path, flow: str, meta: dict, files: list, *extra: str):
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    paths = []
    for f in files:
        (folder / f.name).write_bytes(f.data)
        paths.append(str(folder / f.name))
    return demat("submit", flow, *paths, "--tenant", CITY_A, "--meta-file",
                 str(folder / "meta.json"), *extra)


@pytest.mark.parametrize("case_id", CLI_CASES)
def test_demat_submit_refuses_naming_the_field_and_prints_it_escaped(
        demat, services: Services, tmp_path: Path, case_id: str) -> None:
    case = CASES[case_id]
    got = _submit(demat, tmp_path / "doc", case.flow, case.metadata, list(case.files))
    assert got.returncode == 2, got.stdout + got.stderr
    assert case.field in got.stderr and "Traceback" not in got.stderr
    assert not any(c in got.stderr + got.stdout for c in TERMINAL_CONTROLS), repr(got.stderr)


def test_a_good_document_after_completes(demat, services: Services, tmp_path: Path) -> None:
    meta, files = base("document")
    got = _submit(demat, tmp_path / "good", "document", meta, files, "--wait")
    assert got.returncode == 0, got.stdout + got.stderr
    assert got.stdout.split()[1] == "completed"

"""Payroll run checks: the whole run is rejected with a located report, before publishing."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from bus.settings import Settings
from bus.tenants import TenantRegistry
from tests.hr.payroll_fixtures import sample_nir, write_index, write_run
from workers.payroll.ingest import RunRejected, check_run

TENANTS = TenantRegistry.load(Settings().tenants_path)


def _problems(folder: Path, index: Path | None = None) -> list[dict]:
    with pytest.raises(RunRejected) as exc:
        check_run(folder, index, TENANTS)
    return [p.as_dict() for p in exc.value.problems]


def test_good_run_gets_lots_and_keys(tmp_path: Path) -> None:
    write_run(tmp_path, ["ensap"] * 5 + ["agent-space", "secure-mail|ensap"])
    run = check_run(tmp_path, None, TENANTS, lot_size=4)
    assert run.tenant == "216900910" and len(run.rows) == 7
    lots = [r.metadata.get("ensap_batch") for r in run.rows]
    assert [(b["index"], b["size"]) for b in lots if b] == [(0, 4), (1, 4), (2, 4), (3, 4),
                                                            (0, 2), (1, 2)]
    assert lots[5] is None and run.rows[0].key == "payslip:21690091000011:2026-11:M0000"
    again = check_run(tmp_path, None, TENANTS, lot_size=4)
    assert again.run_id == run.run_id  # same index, same lots and keys


def test_every_problem_is_reported_with_row_file_and_field(tmp_path: Path) -> None:
    rows = write_run(tmp_path, ["ensap"] * 6)
    (tmp_path / "bp-0001.pdf").unlink()  # missing file
    (tmp_path / "stray.pdf").write_bytes(b"%PDF-1.4 stray")  # extra file
    rows[2]["matricule"] = "bad matricule!"
    rows[3]["period"] = "2026-13"
    rows[4]["employer_siret"] = "21690091000012"
    rows[5]["matricule"] = rows[0]["matricule"]  # duplicate pay slip
    rows.append(dict(rows[0], file="bp-0000.pdf"))  # same file twice
    write_index(tmp_path / "index.csv", rows)
    problems = _problems(tmp_path)
    found = {(p["row"], p["file"], p["field"]) for p in problems}
    assert (2, "bp-0001.pdf", "file") in found
    assert (None, "stray.pdf", "file") in found
    assert (3, "bp-0002.pdf", "matricule") in found
    assert (4, "bp-0003.pdf", "period") in found
    assert (5, "bp-0004.pdf", "employer_siret") in found
    assert (6, "bp-0005.pdf", "matricule") in found
    assert (7, "bp-0000.pdf", "file") in found
    text = json.dumps(problems)
    assert all(sample_nir(i)[:13] not in text for i in range(7))


def test_nir_problems_never_quote_the_nir(tmp_path: Path) -> None:
    rows = write_run(tmp_path, ["ensap", "ensap", "agent-space"])
    bad = rows[0]["nir"][:13] + "00"
    rows[0]["nir"] = bad
    rows[1]["matricule"], rows[1]["nir"] = "OTHER", rows[2]["nir"]
    rows[2]["channels"] = "ensap"
    write_index(tmp_path / "index.csv", rows)
    problems = _problems(tmp_path)
    assert {(p["row"], p["field"]) for p in problems} == {(1, "nir"), (3, "nir")}
    assert bad[:13] not in json.dumps(problems) and rows[2]["nir"] not in json.dumps(problems)


def test_zip_with_json_index_and_unknown_channel(tmp_path: Path) -> None:
    rows = write_run(tmp_path / "run", ["agent-space", "ensap"])
    rows[1]["channels"] = ["fax"]
    rows[0]["channels"] = ["agent-space"]
    for r in rows:
        r.pop("email")
    (tmp_path / "run" / "index.csv").unlink()
    index = tmp_path / "index.json"
    index.write_text(json.dumps(rows))
    archive = tmp_path / "run.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for pdf in (tmp_path / "run").glob("*.pdf"):
            zf.write(pdf, pdf.name)
    problems = _problems(archive, index)
    assert [(p["row"], p["field"]) for p in problems] == [(2, "channels.0")]
    rows[1]["channels"] = ["ensap"]
    index.write_text(json.dumps(rows))
    run = check_run(archive, index, TENANTS)
    try:
        assert [r.path.read_bytes()[:5] for r in run.rows] == [b"%PDF-"] * 2
    finally:
        run.close()
    assert not run.rows[0].path.exists()


def test_a_run_speaks_only_for_its_tenant(tmp_path: Path) -> None:
    rows = write_run(tmp_path, ["agent-space"] * 3)
    rows[1]["employer_siret"] = "21450249400013"  # the other demo city's establishment
    rows[2]["employer_siret"] = "21690091000029"  # of the tenant's SIREN, but not listed
    write_index(tmp_path / "index.csv", rows)
    with pytest.raises(RunRejected) as exc:
        check_run(tmp_path, None, TENANTS, tenant="216900910")
    found = {(p.row, p.field) for p in exc.value.problems}
    assert found == {(2, "employer_siret"), (3, "employer_siret")}


def test_a_run_file_name_the_targets_cannot_store_is_a_problem(tmp_path: Path) -> None:
    rows = write_run(tmp_path, ["agent-space"] * 2)
    bad = "bp\x1b[2J.pdf"
    (tmp_path / rows[1]["file"]).rename(tmp_path / bad)
    rows[1]["file"] = bad
    write_index(tmp_path / "index.csv", rows)
    found = {(p["row"], p["field"]) for p in _problems(tmp_path)}
    assert (2, "file") in found

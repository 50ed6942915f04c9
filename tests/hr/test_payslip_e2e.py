"""Pay slips through the real bus: a payroll run ingested, sealed, delivered (ENSAP lots,
agent WebDAV space, secure mail with read receipt), encrypted at rest, and no NIR or name
in the logs, the journal or the index."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from bus.client import DematClient
from bus.dev.launcher import Services, wait_until
from bus.settings import Settings
from schemas.envelope import FileRef
from tests.common.test_signed_version_e2e import digests, sip_object_digest
from tests.conftest import SHARED, index_text
from tests.hr.payroll_fixtures import sample_nir, write_index, write_run
from tests.privacy_scan import leaks, scanned_paths

pytestmark = pytest.mark.stack
CHANNELS = ["ensap", "ensap", "ensap|agent-space", "agent-space", "secure-mail"]
MARKER = b"BULLETIN CONFIDENTIEL"


def _wait_all(settings: Settings, ids: list[str], timeout: float = 600) -> list:
    async def go() -> list:
        async with DematClient(settings) as client:
            return list(await asyncio.gather(*(client.wait(i, timeout, 0.5) for i in ids)))

    return asyncio.run(go())


@pytest.mark.timeout(900)
def test_payroll_run_end_to_end_with_personal_data_protected(
        settings: Settings, services: Services, demat, tmp_path: Path) -> None:
    rows = write_run(tmp_path / "run", CHANNELS, period="2026-10")
    secrets = [sample_nir(i)[:13] for i in range(len(rows))] + \
              [r["agent_name"] for r in rows] + [r["email"] for r in rows if r["email"]]

    bad = tmp_path / "bad"
    bad_rows = write_run(bad, CHANNELS, period="2026-10")
    bad_rows[1]["employer_siret"] = "21690091000012"
    write_index(bad / "index.csv", bad_rows)
    refused = demat("submit-batch", "payslip", str(bad), "--json")
    assert refused.returncode == 2, refused.stderr
    problems = json.loads(refused.stdout)["problems"]
    assert [(p["row"], p["field"]) for p in problems] == [(2, "employer_siret")]

    done = demat("submit-batch", "payslip", str(tmp_path / "run"), "--lot-size", "2", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["published"] == 5 and len(summary["ids"]) == 5
    states = _wait_all(settings, summary["ids"])
    assert [s.state.value for s in states] == ["completed"] * 5, \
        [(s.current_step, s.error) for s in states]
    lots = {s.record("ensap").output.get("lot") for s in states[:3]}
    assert len(lots) == 2  # lot size 2: members 0-1, then a lot of one
    # woken, not polled: the lot's leader and the batcher wake the members, whose own
    # first poll would come only after 30 s (workers.payroll.ensap.MEMBER_POLL, archive's too)
    for step, docs in (("ensap", states[:2]), ("archive", states)):
        took = [(s.record(step).finished_at - s.record(step).started_at).total_seconds()
                for s in docs]
        assert max(took) < 25, (step, took)
    assert states[4].record("mail-receipt").output["read"] is True
    assert states[2].record("agent-space").output["location"].endswith(
        f"/espaces-agents/M0002/2026-10_{summary['ids'][2]}")

    export = tmp_path / "export"  # the lot leader kept the envelope it sent
    assert demat("export", summary["ids"][0], "--dir", str(export)).returncode == 0
    assert MARKER in (export / "files" / "bp-0000.pdf").read_bytes()
    envelopes = list((export / "artefacts" / "ensap").glob("ensap-envelope-*.xml"))
    assert len(envelopes) == 1 and envelopes[0].read_bytes().count(b"<assure>") == 2
    check = subprocess.run([sys.executable, str(SHARED / "tools" / "xsdcheck.py"), "ensap",
                            str(envelopes[0])], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout

    again = demat("submit-batch", "payslip", str(tmp_path / "run"), "--lot-size", "2", "--json")
    assert json.loads(again.stdout)["already_submitted"] == 5

    sims = json.loads((settings.var_dir / "simulators.json").read_text())
    ensap = httpx.get(f"{sims['ensap']}/_sim/counts").json()
    assert all(ensap["lots"][lot] == 1 for lot in lots) and ensap["pay_slip_duplicates"] == {}
    mail = httpx.get(f"{sims['securemail']}/_sim/counts").json()
    assert mail["mails"][summary["ids"][4]] == 1
    _sealed_version_travelled(settings, states, sims)

    from bus.runtime import Runtime

    store = Runtime(settings).store
    for name in store.list_keys("files/216900910/"):
        raw = store.client.get_object(store.bucket, name).read()
        assert MARKER not in raw, name
        assert not any(s.encode() in raw for s in secrets[:5]), name
    assert store.is_encrypted("216900910", states[0].envelope.files[0].sha256)
    assert store.read_file("216900910", states[0].envelope.files[0]).count(MARKER) == 1

    database = settings.database
    assert wait_until(lambda: _completed(database, summary["ids"]), 60)
    text = index_text(database)
    logs = "\n".join(p.read_text(errors="replace") for p in (settings.var_dir / "log").glob("*"))
    for secret in secrets:
        assert secret not in text, "personal value in the index"
        assert secret not in logs, "personal value in the logs"
    assert scanned_paths(settings)  # the store's and the database's files are there
    assert leaks(settings, secrets) == []  # nowhere at rest: objects, Kafka's log, files
    # the scan reads what it should: a value that is not personal (a document id) is found
    # in the states table and in the broker's log (its volume files in the object store)
    places = [p.split(": ")[0] for p in leaks(settings, [states[0].envelope.id])]
    assert "table document_states" in places and any("/s3/tansu_" in p for p in places), \
        places


def _sealed_version_travelled(settings: Settings, states: list, sims: dict) -> None:
    """ENSAP's package (as the simulator decrypted it), the agent space and the archived
    SIP hold the sealed pay slip, not the submitted PDF."""
    from bus.runtime import Runtime

    runtime = Runtime(settings)
    store = runtime.store
    for i, state in enumerate(states):
        state = runtime.states.load_sync(state.doc_id)
        sealed = state.outputs()["seal"]["signed_file"]
        assert sealed["sha256"] != state.envelope.files[0].sha256
        data = store.read_file(state.envelope.tenant, FileRef.model_validate(sealed))
        assert sip_object_digest(settings, state) in digests(data), i
        if "ensap" in CHANNELS[i]:
            lot = httpx.get(f"{sims['ensap']}/ensap/lots/{state.outputs()['ensap']['lot']}")
            assert sealed["sha256"] in {e["sha256"] for e in lot.json()["entries"]}, i
        if "agent-space" in CHANNELS[i]:
            folder = state.outputs()["agent-space"]["location"]
            got = httpx.get(f"{folder}/bulletin-2026-10-{state.envelope.metadata['matricule']}"
                            ".pdf").content
            assert hashlib.sha256(got).hexdigest() == sealed["sha256"], i


def _completed(database: str, ids: list[str]) -> bool:
    with psycopg.connect(database) as db:
        found = db.execute("SELECT count(*) FROM events WHERE type='completed' AND "
                           "doc_id = ANY(%s)", (ids,)).fetchone()[0]
    return found == len(ids)

"""The backup drill on the real embedded stack: back up the bus, restore it into a new
deployment (new buckets, fresh database), verify the journal there and find every
document in the state it had; a damaged or foreign backup is refused, naming the file."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import psycopg
import pytest

from bus.client import DematClient
from bus.dev.launcher import Services
from bus.settings import Settings
from schemas.messages import DocState
from tests.audit.test_audit_e2e import _wait_sealed
from workers.common.demo import minimal_pdf

pytestmark = pytest.mark.stack
TENANT = "216900910"
AUTHOR = "Paul Sauvegarde"


def _submit(settings: Settings, pdf: Path) -> str:
    async def go() -> str:
        async with DematClient(settings) as client:
            receipt = await client.submit("document", [pdf], tenant=TENANT, metadata={
                "title": "Note", "category": "note-backup", "author": AUTHOR,
                "archive": False})
            state = await client.wait(receipt.doc_id, 300)
            assert state is not None and state.state == DocState.COMPLETED, state
            return receipt.doc_id

    return asyncio.run(go())


def _states(url: str) -> dict[str, str]:
    with psycopg.connect(url) as db:
        return dict(db.execute("SELECT doc_id, record FROM document_states").fetchall())


def _secrets(var_dir: Path, settings: Settings) -> list[bytes]:
    """Every secret of the embedded bus: tenant keys, signing key, index secret, the
    store's S3 identity."""
    paths = [*(var_dir / "keys").glob("*.kek"), var_dir / "audit" / "bus-ed25519.pem",
             var_dir / "audit" / "index-secret"]
    return [settings.s3_keys[1].encode(), *(p.read_bytes().strip() for p in paths
                                             if p.exists())]


@pytest.mark.timeout(900)
def test_backup_wipe_restore_verify_and_states_kept(
        demat, services: Services, settings: Settings, pg_url: str, var_dir: Path,
        tmp_path: Path) -> None:
    pdf = tmp_path / "note.pdf"
    pdf.write_bytes(minimal_pdf("Note de service sauvegarde"))
    doc_id = _submit(settings, pdf)
    assert _wait_sealed(settings)["ok"]

    folder = tmp_path / "backup"
    run = demat("backup", "--to", str(folder), "--json")
    assert run.returncode == 0, run.stderr
    made = json.loads(run.stdout)["counts"]
    assert made["rows"]["document_states"] >= 1 and "events" not in made["rows"]
    manifest = json.loads((folder / "manifest.json").read_text())
    paths = {item["path"] for item in manifest["items"]}
    assert "config/flows/document.json" in paths and "keys.json" in paths
    assert any(p.startswith("objects/journal/journal/checkpoints/") for p in paths)
    assert any(p.startswith(f"objects/main/files/{TENANT}/") for p in paths)
    keys = json.loads((folder / "keys.json").read_text())
    assert keys["tenants"][TENANT]["encrypted_objects"] >= 1
    everything = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
    secrets = _secrets(var_dir, settings)
    assert secrets and not [s for s in secrets if s in everything]

    # the new deployment: buckets of another name, a fresh database
    target = {"DEMAT_BUCKET": f"restored-{uuid.uuid4().hex[:12]}", "DEMAT_DATABASE_URL": pg_url}
    _refused_when_damaged(demat, folder, target)

    run = demat("restore", "--from", str(folder), "--json", env=target)
    assert run.returncode == 0, run.stderr
    done = json.loads(run.stdout)
    assert done["counts"]["events_indexed"] >= 1 and not done["warnings"], done
    run = demat("audit", "verify", "--json", env=target)
    report = json.loads(run.stdout)
    assert run.returncode == 0 and report["ok"], report["problems"]
    assert report["counts"]["files"] >= 1 and report["counts"]["states"] >= 1

    assert _states(pg_url) == {d: r for d, r in _states(settings.database).items()
                               if d in _states(pg_url)}
    assert set(_states(pg_url)) >= {doc_id}
    before = json.loads(demat("status", doc_id, "--json").stdout)
    after = json.loads(demat("status", doc_id, "--json", env=target).stdout)
    assert after == before and after["state"] == "completed"
    found = json.loads(demat("search", "--key", f"author={AUTHOR}", "--json", env=target).stdout)
    assert [r["id"] for r in found] == [doc_id]

    again = demat("restore", "--from", str(folder), env=target)  # not into a used bus
    assert again.returncode == 2 and "is not empty" in again.stderr


def _refused_when_damaged(demat, folder: Path, target: dict[str, str]) -> None:
    """One flipped byte, a missing file, a stray file: refused, named, nothing written."""
    victim = next(p for p in sorted((folder / "objects" / "journal").rglob("*.json")))
    data = victim.read_bytes()
    victim.write_bytes(data[:10] + bytes([data[10] ^ 1]) + data[11:])
    run = demat("restore", "--from", str(folder), env=target)
    assert run.returncode == 2 and victim.name in run.stderr and "damaged" in run.stderr
    victim.write_bytes(data)
    stray = folder / "tables" / "extra.csv"
    stray.write_text("x\n")
    run = demat("restore", "--from", str(folder), env=target)
    assert run.returncode == 2 and "extra.csv" in run.stderr and "not listed" in run.stderr
    stray.unlink()
    table = folder / "tables" / "document_states.csv"
    kept = table.read_bytes()
    table.unlink()
    run = demat("restore", "--from", str(folder), env=target)
    assert run.returncode == 2 and "document_states.csv" in run.stderr and "missing" in run.stderr
    table.write_bytes(kept)

"""``demat audit export``: a document's proof bundle, verifiable offline with standard tools."""

from __future__ import annotations

import hashlib
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bus.audit.bundle_readme import TEMPLATE
from bus.audit.merkle import inclusion_proof, leaf_hash, tree_root
from bus.audit.sealer import segment_lines, tsa_ca_path
from bus.audit.store import (
    CHECKPOINTS,
    SEGMENTS,
    TSA_CAS,
    JournalStore,
    checkpoint_key,
    number,
    segment_key,
)
from bus.audit.verify import IO_THREADS
from bus.runtime import Runtime
from connectors.tsa.token import verify_response

OFFLINE_SCRIPT = Path(__file__).with_name("offline_verify.py")



def export_bundle(runtime: Runtime, doc_id: str, dest: Path) -> dict[str, Any]:
    """Write the proof bundle of ``doc_id`` under ``dest``; return what it holds."""
    journal = JournalStore(runtime.settings, runtime.store)
    checkpoints = journal.numbered(CHECKPOINTS, "json")
    if not checkpoints:
        raise KeyError("the journal has no checkpoint yet: wait for the sealer")
    k = number(checkpoints[-1])
    data = journal.get(checkpoint_key(k)) or b""
    body = json.loads(data)
    leaves, mine = _leaves(journal, body["last_segment"], doc_id)
    if len(leaves) != body["tree_size"] or tree_root(leaves).hex() != body["root"]:
        raise ValueError(f"the sealed journal does not match checkpoint {k}: "
                         "run `demat audit verify`")
    unsealed = _unsealed(journal, body["last_segment"], doc_id)
    if not mine and not unsealed:
        raise KeyError(f"no journal events for {doc_id}")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "events.jsonl").write_bytes(b"".join(line + b"\n" for _, line in mine))
    proofs = [{"leaf_index": i, "event_id": json.loads(line)["event_id"],
               "audit_path": [h.hex() for h in inclusion_proof(leaves, i)]} for i, line in mine]
    (dest / "proofs.json").write_text(json.dumps(
        {"checkpoint": k, "tree_size": body["tree_size"], "root": body["root"],
         "events": proofs}, indent=2))
    (dest / "checkpoint.json").write_bytes(data)
    (dest / "checkpoint.sig").write_bytes(journal.get(checkpoint_key(k, "sig")) or b"")
    tsr = journal.get(checkpoint_key(k, "tsr")) or b""
    (dest / "checkpoint.tsr").write_bytes(tsr)
    ca = _tsa_ca(runtime, journal, body.get("tsa_ca"))
    (dest / "tsa-ca.pem").write_bytes(ca)
    (dest / "tsa.pem").write_bytes(verify_response(tsr, data, ca).tsa_cert_pem)
    (dest / "bus-ed25519.pub.pem").write_bytes(
        journal.get(f"journal/keys/{body['key_id']}.pem") or b"")
    shutil.copyfile(OFFLINE_SCRIPT, dest / "verify_inclusion.py")
    if unsealed:
        (dest / "unsealed-events.jsonl").write_bytes(b"".join(x + b"\n" for x in unsealed))
    note = (f"| `unsealed-events.jsonl` | {len(unsealed)} later events, not sealed yet "
            "(no proof until the next checkpoint) |\n") if unsealed else ""
    (dest / "README.md").write_text(TEMPLATE.format(
        doc_id=doc_id, made_at=body["sealed_at"], k=k, size=body["tree_size"],
        root=body["root"], n=len(mine), key_id=body["key_id"][:16], unsealed=note))
    return {"document": doc_id, "checkpoint": k, "events": len(mine),
            "unsealed_events": len(unsealed), "dir": str(dest)}


def _leaves(journal: JournalStore, last_segment: int,
            doc_id: str) -> tuple[list[bytes], list[tuple[int, bytes]]]:
    leaves: list[bytes] = []
    mine: list[tuple[int, bytes]] = []
    with ThreadPoolExecutor(IO_THREADS) as pool:  # the store is remote: parallel requests
        segments = pool.map(journal.get, [segment_key(n) for n in range(1, last_segment + 1)])
    for data in segments:
        for line in segment_lines(data or b""):
            if _doc_of(line) == doc_id:
                mine.append((len(leaves), line))
            leaves.append(leaf_hash(line))
    return leaves, mine


def _unsealed(journal: JournalStore, last_segment: int, doc_id: str) -> list[bytes]:
    return [line for key in journal.numbered(SEGMENTS, "jsonl") if number(key) > last_segment
            for line in segment_lines(journal.get(key) or b"") if _doc_of(line) == doc_id]


def _doc_of(line: bytes) -> str | None:
    try:
        return json.loads(line).get("doc_id")
    except ValueError:
        return None


def _tsa_ca(runtime: Runtime, journal: JournalStore, sha: str | None) -> bytes:
    path = tsa_ca_path(runtime.settings)
    if path.exists():
        return path.read_bytes()
    stored = journal.get(f"{TSA_CAS}{sha}.pem") if sha else None
    if stored is None or hashlib.sha256(stored).hexdigest() != sha:
        raise KeyError("no TSA CA certificate (set DEMAT_TSA_CA_FILE)")
    return stored

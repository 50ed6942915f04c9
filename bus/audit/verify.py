"""``demat audit verify``: is the journal intact, and is every stored file what it claims?

Checks, naming the checkpoint, segment, document, event or object at fault:

1. checkpoints: numbering, link to the previous one, Ed25519 signature, RFC 3161
   token (imprint, TSA signature, chain to the TSA CA), Merkle root and size;
2. segments: each sealed one has the SHA-256 and line count its checkpoint holds;
3. events: each one's hash matches its content; each document's events form one
   chain (``prev_hash`` -> previous event); the chain ends at the head its state holds;
4. files: every object under ``files/`` hashes to its name (content addressing);
   every file and artefact a state refers to exists (but those a purge removed).

Scoped to some tenants (the HTTP API's ``/v1/audit/verify``), checkpoints and segments
are still all verified (every tenant's proofs rest on them), but only the scope's events,
chains, states (of the documents with events in the journal) and files are checked and
counted, and only they are named.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bus.audit.chain import event_hash
from bus.audit.merkle import MerkleAccumulator, leaf_hash
from bus.audit.sealer import segment_lines, tsa_ca_path
from bus.audit.signing import local_public_pem
from bus.audit.signing import verify as verify_signature
from bus.audit.store import (
    CHECKPOINTS,
    KEYS,
    SEGMENTS,
    TSA_CAS,
    JournalStore,
    checkpoint_key,
    number,
)
from bus.objectstore import IntegrityError, ObjectMissing
from bus.runtime import Runtime
from connectors.tsa.token import TokenError, verify_response
from schemas.envelope import FileRef, utcnow
from schemas.messages import DocState, DocumentState

IO_THREADS = 8
SETTLE = timedelta(seconds=120)  # a state this recent may be ahead of the sealed journal


@dataclass
class Problem:
    where: str
    what: str


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    trust: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, where: str, what: str) -> None:
        self.problems.append(Problem(where, what))

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "counts": dict(self.counts), "trust": self.trust,
                "problems": [p.__dict__ for p in self.problems], "warnings": self.warnings}


@dataclass
class _Event:
    doc_id: str
    event_id: str
    seq: int
    prev: str | None
    where: str


class Verifier:
    def __init__(self, runtime: Runtime, scope: set[str] | None = None) -> None:
        self.runtime = runtime
        self.scope = scope  # tenants whose documents are checked (None: all)
        self.journal = JournalStore(runtime.settings, runtime.store)
        self.report = Report()
        self.events: dict[str, dict[str, _Event]] = defaultdict(dict)  # doc -> hash -> event
        self._referenced: set[tuple[str, str, str]] = set()  # (doc, file name, object key)
        self._cache: dict[str, bytes | None] = {}

    def run(self) -> Report:
        self._prefetch()
        last = self._checkpoints()
        self._unsealed(last)
        self._chains()
        self._files()
        return self.report

    # --- checkpoints and segments ---------------------------------------------------

    def _prefetch(self) -> None:
        """Read every journal object at once (parallel requests; the store is remote)."""
        keys = self.journal.keys("journal/")
        with ThreadPoolExecutor(IO_THREADS) as pool:
            self._cache = dict(zip(keys, pool.map(self.journal.get, keys), strict=True))

    def _get(self, key: str) -> bytes | None:
        return self._cache.get(key)

    def _trusted_key(self) -> dict[str, bytes]:
        local = local_public_pem(self.runtime.settings)
        if local is not None:
            self.report.trust["bus_key"] = "local key file"
            return {hashlib.sha256(_raw(local)).hexdigest(): local}
        self.report.trust["bus_key"] = "public keys published in the journal bucket"
        keys = {}
        for key in self.journal.keys(KEYS):
            pem = self._get(key) or b""
            keys[key.rsplit("/", 1)[1].removesuffix(".pem")] = pem
        return keys

    def _tsa_ca(self, sha: str | None) -> bytes | None:
        path = tsa_ca_path(self.runtime.settings)
        if path.exists():
            self.report.trust["tsa_ca"] = str(path)
            return path.read_bytes()
        self.report.trust["tsa_ca"] = "TSA CA copy in the journal bucket"
        return self._get(f"{TSA_CAS}{sha}.pem") if sha else None

    def _checkpoints(self) -> int:
        """Verify every checkpoint and the segments it seals; return the last sealed segment."""
        keys, prev, tree, next_segment = self._trusted_key(), None, MerkleAccumulator(), 1
        for i, key in enumerate(self.journal.numbered(CHECKPOINTS, "json"), start=1):
            where = f"checkpoint {i} ({key})"
            if number(key) != i:
                self.report.fail(where, f"checkpoint {i} is missing; found {key}")
                break
            data = self._get(key) or b""
            self.report.counts["checkpoints"] += 1
            try:
                body = json.loads(data)
                self._check_checkpoint(i, data, body, keys, prev)
            except (ValueError, KeyError, TypeError) as exc:
                self.report.fail(where, f"unreadable checkpoint ({exc}): altered")
                break
            for seg in body["segments"]:
                if seg["n"] != next_segment:
                    self.report.fail(where, f"segment {next_segment} is not sealed by any "
                                            f"checkpoint (next listed: {seg['n']})")
                next_segment = seg["n"] + 1
                self._segment(seg["key"], tree, expected=seg, by=where)
            if tree.size != body["tree_size"] or tree.root().hex() != body["root"]:
                self.report.fail(where, f"Merkle root of the sealed segments "
                                        f"({tree.size} leaves) differs from the checkpoint's "
                                        f"({body['tree_size']} leaves): journal altered")
                with contextlib.suppress(ValueError, KeyError, TypeError):  # name it once
                    tree = MerkleAccumulator.from_state(body["tree"])
            prev = hashlib.sha256(data).hexdigest()
        return next_segment - 1

    def _check_checkpoint(self, i: int, data: bytes, body: dict, keys: dict[str, bytes],
                          prev: str | None) -> None:
        where = f"checkpoint {i} ({checkpoint_key(i)})"
        if body["checkpoint"] != i:
            self.report.fail(where, f"says it is checkpoint {body['checkpoint']}")
        if body["prev_checkpoint"] != prev:
            self.report.fail(where, f"does not link to checkpoint {i - 1} (prev_checkpoint "
                                    f"{body['prev_checkpoint']}, expected {prev})")
        pem = keys.get(body["key_id"])
        sig = self._get(checkpoint_key(i, "sig"))
        if pem is None:
            self.report.fail(where, f"signed with unknown key {body['key_id'][:16]}")
        elif sig is None or not verify_signature(pem, sig, data):
            self.report.fail(where, "Ed25519 signature does not verify: checkpoint or "
                                    "signature altered")
        else:
            self.report.counts["signatures"] += 1
        tsr = self._get(checkpoint_key(i, "tsr"))
        ca = self._tsa_ca(body.get("tsa_ca"))
        if tsr is None or ca is None:
            self.report.fail(where, "no RFC 3161 time-stamp token" if tsr is None
                             else "no TSA CA certificate to check its time-stamp")
            return
        try:
            verify_response(tsr, data, ca)
            self.report.counts["timestamps"] += 1
        except TokenError as exc:
            self.report.fail(f"{where} time-stamp {checkpoint_key(i, 'tsr')}", str(exc))

    def _segment(self, key: str, tree: MerkleAccumulator | None, *,
                 expected: dict | None, by: str = "") -> None:
        data = self._get(key)
        if data is None:
            self.report.fail(f"journal segment {key}", "missing")
            return
        self.report.counts["segments"] += 1
        lines = segment_lines(data)
        if expected is not None:
            if hashlib.sha256(data).hexdigest() != expected["sha256"]:
                self.report.fail(f"journal segment {key}",
                                 f"SHA-256 differs from the one sealed in {by}: altered")
            if len(lines) != expected["leaves"]:
                self.report.fail(f"journal segment {key}",
                                 f"{len(lines)} events, {by} sealed {expected['leaves']}")
        for no, line in enumerate(lines, start=1):
            if tree is not None:
                tree.append(leaf_hash(line))
            self._event(line, f"{key} line {no}")

    def _unsealed(self, last_sealed: int) -> None:
        for key in self.journal.numbered(SEGMENTS, "jsonl"):
            if number(key) > last_sealed:
                self.report.counts["unsealed_segments"] += 1
                self._segment(key, None, expected=None)
        if self.report.counts["unsealed_segments"]:
            self.report.warnings.append(
                f"{self.report.counts['unsealed_segments']} segment(s) not sealed yet "
                "(the next checkpoint will seal them)")

    # --- events and chains -------------------------------------------------------------

    def _event(self, line: bytes, where: str) -> None:
        self.report.counts["events"] += 1
        try:
            ev = json.loads(line)
            doc_id, event_id, seq = ev["doc_id"], ev["event_id"], int(ev["seq"])
        except (ValueError, KeyError, TypeError):
            self.report.fail(where, "not a journal event (altered)")
            return
        if self.scope is not None and ev.get("tenant") not in self.scope:
            self.report.counts["events"] -= 1  # another tenant's: not checked, not named
            return
        if not ev.get("hash"):
            self.report.fail(f"document {doc_id} event {event_id} ({where})", "has no hash")
            return
        if event_hash(ev) != ev["hash"]:
            self.report.fail(f"document {doc_id} event {event_id} ({where})",
                             "content does not match its hash: altered")
            return
        self.events[doc_id][ev["hash"]] = _Event(doc_id, event_id, seq, ev.get("prev_hash"),
                                                 where)

    def _chains(self) -> None:
        self._links()
        self._heads()

    def _links(self) -> None:
        """Each document's events form one chain (``prev_hash`` -> previous event)."""
        for doc_id, events in self.events.items():
            self.report.counts["documents"] += 1
            for ev in events.values():
                prev = events.get(ev.prev) if ev.prev else None
                if ev.prev is None and ev.seq != 1:
                    self.report.fail(f"document {doc_id} event {ev.event_id} ({ev.where})",
                                     "starts a chain but is not the first event")
                elif ev.prev is not None and (prev is None or prev.seq != ev.seq - 1):
                    self.report.fail(f"document {doc_id} event {ev.event_id} ({ev.where})",
                                     f"follows event {ev.prev[:16]}… which is not in the "
                                     "journal: an event was removed or altered")

    def _heads(self) -> None:
        states = self.runtime.states
        doc_ids = states.doc_ids() if self.scope is None else sorted(self.events)
        raws = states.records(doc_ids)
        for doc_id in doc_ids:
            raw = raws.get(doc_id)
            if raw is None:
                continue  # events without a state (as the full run, which lists states)
            try:
                state = DocumentState.model_validate_json(raw)
            except ValueError:
                self.report.fail(f"state of {doc_id}", "unreadable document state")
                continue
            if self.scope is not None and (
                    state.envelope is None or state.envelope.tenant not in self.scope):
                continue
            self.report.counts["states"] += 1
            self._state_refs(state)
            head = self.events.get(state.doc_id, {}).get(state.chain_head or "")
            if head is not None and head.seq == state.seq:
                continue
            if utcnow() - state.updated_at < SETTLE:
                self.report.counts["pending"] += 1
                continue
            self.report.fail(f"document {state.doc_id}",
                             f"its state's last event (seq {state.seq}, hash "
                             f"{(state.chain_head or 'none')[:16]}) is not in the journal")

    # --- stored files -----------------------------------------------------------------

    def _state_refs(self, state: DocumentState) -> None:
        if state.envelope is None:
            return
        tenant = state.envelope.tenant
        # a refused submission may name files that never reached the store (that is why
        # it was refused): only admitted documents' files must be there
        admitted = state.state not in (DocState.REJECTED, DocState.DUPLICATE) or state.steps
        refs = [(f.name, f.sha256) for f in state.envelope.files] if admitted else []
        refs += [(a.file.name, a.file.sha256) for a in state.artefacts]
        gone = set(state.purged.files) if state.purged else set()  # its retention ended
        for name, sha in refs if not gone else [r for r in refs if r[1] not in gone]:
            self._referenced.add((state.doc_id, name, self.runtime.store.file_key(tenant, sha)))

    def _files(self) -> None:
        store = self.runtime.store
        prefixes = ["files/"] if self.scope is None else [f"files/{t}/" for t in sorted(self.scope)]
        keys = [o.object_name for prefix in prefixes for o in store.client.list_objects(
            store.bucket, prefix=prefix, recursive=True)]
        self.report.counts["files"] = len(keys)
        with ThreadPoolExecutor(IO_THREADS) as pool:
            for key, error in zip(keys, pool.map(self._check_file, keys), strict=True):
                if error:
                    self.report.fail(f"object {key}", error)
        seen = set(keys)
        for doc_id, name, key in sorted(self._referenced):
            if key not in seen:
                self.report.fail(f"document {doc_id} file {name}", f"object {key} is missing")


    def _check_file(self, key: str) -> str | None:
        """Read a stored file through the store (decrypting it if encrypted at rest)."""
        _, tenant, _, sha = key.split("/")
        ref = FileRef(sha256=sha, size=0, media_type="application/octet-stream", name=key)
        try:
            for _ in self.runtime.store.iter_file(tenant, ref):
                pass
        except IntegrityError:
            return "content does not match its SHA-256 name: altered"
        except (ObjectMissing, ValueError) as exc:
            return f"unreadable: {exc}"
        return None


def _raw(pem: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(pem)
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def verify_bus(runtime: Runtime, scope: set[str] | None = None) -> Report:
    """Run every check (on the documents of the ``scope`` tenants only, if given); the
    report lists each problem with where it is."""
    return Verifier(runtime, scope).run()

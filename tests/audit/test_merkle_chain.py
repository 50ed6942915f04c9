"""RFC 9162 Merkle hashing, the per-document hash chain and flow search keys (no I/O)."""

from __future__ import annotations

import hashlib
import itertools
import json

import pytest

from bus.audit import offline_verify
from bus.audit.chain import event_hash
from bus.audit.config import configuration_message
from bus.audit.merkle import (
    MerkleAccumulator,
    inclusion_proof,
    leaf_hash,
    node_hash,
    tree_root,
    verify_inclusion,
)
from bus.engine import FlowEngine
from bus.flows import FlowRegistry
from bus.runtime import Runtime
from bus.settings import Settings
from bus.tenants import ConnectorConfig, Tenant, TenantRegistry
from schemas.envelope import Envelope, FileRef
from schemas.flow import FlowDefinition
from schemas.messages import Accepted, StepDone
from tests.conftest import index_text

GED = {"ged": ConnectorConfig(type="folder")}


def test_tree_shape_follows_rfc_9162_for_non_powers_of_two() -> None:
    a, b, c = (leaf_hash(x) for x in (b"a", b"b", b"c"))
    assert leaf_hash(b"a") == hashlib.sha256(b"\x00a").digest()
    assert tree_root([a, b, c]) == node_hash(node_hash(a, b), c)  # split at 2, not 1
    assert tree_root([]) == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 13, 32, 33])
def test_accumulator_and_proofs_agree_with_the_definition(size: int) -> None:
    leaves = [leaf_hash(str(i).encode()) for i in range(size)]
    acc = MerkleAccumulator()
    for leaf in leaves:
        acc.append(leaf)
    root = tree_root(leaves)
    assert acc.root() == root
    assert MerkleAccumulator.from_state(acc.state()).root() == root
    for i in range(size):
        path = inclusion_proof(leaves, i)
        assert verify_inclusion(leaves[i], i, size, path, root)
        assert offline_verify.verify_inclusion(leaves[i], i, size, path, root)
        assert not offline_verify.verify_inclusion(leaf_hash(b"other"), i, size, path, root)


def _engine() -> FlowEngine:
    tenants = TenantRegistry([Tenant(siren="216900910", name="A", connectors=GED)])
    return FlowEngine(FlowRegistry.load(), tenants, key_hasher=lambda n, v: f"h({n}:{v})")


def _env() -> Envelope:
    return Envelope(tenant="216900910", flow="document",
                    metadata={"title": "t", "category": "Arrêté", "author": "Jeanne Dupont",
                              "keywords": ["voirie", "Budget "]},
                    files=[FileRef(sha256="b" * 64, size=3, media_type="text/plain", name="a")])


def test_events_chain_per_document_and_redelivery_links_to_same_head() -> None:
    engine, env = _engine(), _env()
    out = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    first = out.state.model_copy(deep=True)
    out2 = engine.on_step_done(out.state, StepDone(doc_id=env.id, task_id=out.tasks[0].task_id,
                                                   step="validate"))
    events = [*out.events, *out2.events]
    assert events[0].prev_hash is None
    for prev, ev in itertools.pairwise(events):
        assert ev.prev_hash == prev.hash
    for ev in events:  # the hash covers the event as it travels (JSON on the wire)
        assert event_hash(json.loads(ev.model_dump_json())) == ev.hash
    assert out2.state.chain_head == events[-1].hash
    again = engine.on_step_done(first, StepDone(doc_id=env.id, task_id=out.tasks[0].task_id,
                                                step="validate"))
    assert again.events[0].prev_hash == out2.events[0].prev_hash  # same link after a crash
    tampered = json.loads(events[1].model_dump_json()) | {"state": "completed"}
    assert event_hash(tampered) != events[1].hash


def test_search_keys_in_events_personal_ones_only_hashed() -> None:
    engine, env = _engine(), _env()
    out = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    keys = out.events[0].detail["keys"]
    assert keys["category"] == ["arrêté"] and keys["keyword"] == ["budget", "voirie"]
    assert keys["author"] == ["h(author:jeanne dupont)"]
    assert "Jeanne" not in out.events[0].model_dump_json()
    done = engine.on_step_done(out.state, StepDone(
        doc_id=env.id, task_id=out.tasks[0].task_id, step="validate"))
    done = engine.on_step_done(done.state, StepDone(
        doc_id=env.id, task_id=done.tasks[0].task_id, step="deposit",
        output={"location": "dav://x/y"}))
    assert done.events[0].detail["keys"] == {"deposit_location": ["dav://x/y"]}
    no_secret = FlowEngine(engine.flows, engine.tenants)  # never in clear, even without key
    first = no_secret.on_accepted(None, Accepted(doc_id=env.id, envelope=env)).events[0]
    assert "author" not in first.detail["keys"]


def test_flow_search_key_must_name_a_step_of_the_flow() -> None:
    with pytest.raises(ValueError, match="search key 'receipt': unknown step 'transmit'"):
        FlowDefinition.model_validate({
            "name": "x", "metadata_model": "document",
            "steps": [{"name": "validate", "kind": "validate"}],
            "search_keys": {"receipt": "steps.transmit.receipt_id"}})


def test_configuration_change_is_journaled_once_per_digest(tmp_path) -> None:
    engine = _engine()
    msg = configuration_message(Runtime(Settings(var_dir=tmp_path)))
    assert "flow:document" in msg.parts and len(msg.digest) == 64
    out = engine.on_configuration(None, msg)
    assert [e.type for e in out.events] == ["configuration-changed"]
    assert engine.on_configuration(out.state, msg).events == []
    changed = msg.model_copy(update={"digest": "0" * 64})
    again = engine.on_configuration(out.state, changed)
    assert again.events[0].detail["previous"] == msg.digest
    assert again.events[0].prev_hash == out.events[0].hash


def test_index_search_by_keys_dates_and_hashed_personal_query(tmp_path, pg_url: str) -> None:
    from bus.audit.config import key_hasher
    from bus.index import Index
    from bus.search import query_keys

    settings = Settings(var_dir=tmp_path)
    hasher = key_hasher(settings)
    engine = FlowEngine(FlowRegistry.load(), TenantRegistry(
        [Tenant(siren="216900910", name="A", connectors=GED)]), key_hasher=hasher)
    env = _env()
    events = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env)).events
    index = Index(pg_url)
    index.add(events)
    flows = FlowRegistry.load()
    by_author = query_keys([("author", "  jeanne   DUPONT ")], flows, hasher)
    assert by_author["author"] != "jeanne dupont"  # the query is hashed, like the journal
    assert [r["id"] for r in index.search(keys=by_author)] == [env.id]
    assert [r["id"] for r in index.search(
        keys=query_keys([("keyword", "Voirie")], flows, hasher), tenant="216900910",
        flow="document", since="2000-01-01")] == [env.id]
    assert index.search(keys=by_author, until="2000-01-01") == []
    assert index.search(keys=query_keys([("category", "other")], flows, hasher)) == []
    with pytest.raises(ValueError, match="no flow declares the search key 'x'"):
        query_keys([("x", "1")], flows, hasher)
    index.close()
    text = index_text(pg_url)
    assert env.id in text and "dupont" not in text.lower()


def test_verifier_names_altered_and_removed_events(tmp_path) -> None:
    from types import SimpleNamespace

    from bus.audit.verify import Verifier

    engine, env = _engine(), _env()
    out = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    out2 = engine.on_step_done(out.state, StepDone(doc_id=env.id, task_id=out.tasks[0].task_id,
                                                   step="validate"))
    lines = [e.model_dump_json().encode() for e in [*out.events, *out2.events]]
    runtime = SimpleNamespace(settings=Settings(var_dir=tmp_path),
                              store=SimpleNamespace(bucket_view=lambda name: SimpleNamespace(
                                  client=None, bucket=name)))

    def check(candidate: list[bytes]) -> list[tuple[str, str]]:
        verifier = Verifier(runtime)  # type: ignore[arg-type]
        for no, line in enumerate(candidate, 1):
            verifier._event(line, f"seg line {no}")
        verifier._links()
        return [(p.where, p.what) for p in verifier.report.problems]

    assert check(lines) == [] and check([*lines, lines[1]]) == []  # redelivered duplicate ok
    altered = lines[1].replace(b'"step-started"', b'"step-skipped"')
    (where, what), *_ = check([lines[0], altered, *lines[2:]])
    assert f"event {env.id}:2" in where and "altered" in what
    problems = check([lines[0], *lines[2:]])  # event 2 removed
    assert problems and f"event {env.id}:3" in problems[0][0] and "removed" in problems[0][1]

"""Letters, answers and cancellation through the real step functions, the real flow engine
and a real S²LOW simulator on loopback (the object store is the embedded one; Kafka is
replaced by a loop feeding each task's result back to the engine)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from pgserver import PostgresServer

from bus import intake
from bus.engine import FlowEngine
from bus.runtime import Runtime
from bus.services.steps import execute
from bus.settings import Settings
from bus.tenants import ConnectorConfig, Tenant, TenantRegistry
from connectors.errors import TransientError
from connectors.s2low.client import ActesStatus
from connectors.s2low.simulator import S2lowSimulator, default_classification
from connectors.simulator import FailurePlan
from schemas.acte import TenantActesSettings
from schemas.envelope import Envelope, FileRole, utcnow
from schemas.messages import (
    Accepted,
    DocState,
    DocumentState,
    StepDone,
    StepFailed,
    StepTask,
    StepWaiting,
)
from tests.conftest import new_database
from workers.actes.classification import cache_key
from workers.common.demo import minimal_pdf

pytestmark = pytest.mark.stack
SIREN = "216900910"
ACTES = {"departement": "069", "arrondissement": 1, "nature_autorite": "32",
         "return_emails": ["actes@ville.example.fr"], "letter_watch_days": 0.00002}
PDF = minimal_pdf("acte de test")  # a real PDF: the prefecture takes no other


@pytest.fixture(scope="module")
def sim() -> Iterator[S2lowSimulator]:
    authority = TenantActesSettings.model_validate(
        {k: v for k, v in ACTES.items() if k != "letter_watch_days"} | {"siren": SIREN})
    simulator = S2lowSimulator(authorities={"ville": authority}, users={"ville": "pw"})
    simulator.start()
    yield simulator
    simulator.stop()


WORKER_BUCKET = "demat-acte-worker-tests"

@pytest.fixture(scope="module")
def runtime(settings: Settings, sim: S2lowSimulator, pg_server: PostgresServer) -> Runtime:
    # its own bucket and database: these documents are driven without the router, so
    # their states have no journal, and the audit of the session's bus must not meet them
    rt = Runtime(settings.model_copy(update={"bucket": WORKER_BUCKET,
                                             "database_url": new_database(pg_server)}))
    s2low = ConnectorConfig(type="s2low", options={
        "url": sim.base_url, "login": "ville", "password": "pw", "timeout": 3,
        "poll_seconds": 0, "letter_poll_seconds": 0})
    rt.__dict__["tenants"] = TenantRegistry([Tenant(
        siren=SIREN, name="Ville", settings={"actes": ACTES}, connectors={"s2low": s2low})])
    return rt


async def _drive(runtime: Runtime, env: Envelope) -> DocumentState:
    """Run a document through its flow: tasks to the step functions, results to the engine."""
    await asyncio.to_thread(intake.check_stored_files, env, runtime.store)
    await intake.check_flow(runtime, env)
    engine, states = FlowEngine(runtime.flows, runtime.tenants), runtime.states
    out = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    for _ in range(400):
        await states.save(out.state)
        if not out.tasks:
            return out.state
        result = await execute(runtime, out.tasks[0])
        out = _apply(engine, out.state, result)
        if isinstance(result, StepWaiting | StepFailed):
            await asyncio.sleep(0.05)
    raise AssertionError(f"document {env.id} did not finish: {out.state.current_step}")


def _apply(engine: FlowEngine, state: DocumentState, result) -> object:
    if isinstance(result, StepDone):
        return engine.on_step_done(state, result)
    if isinstance(result, StepWaiting):
        return engine.on_step_waiting(state, result)
    return engine.on_step_failed(state, result)


def _env(runtime: Runtime, flow: str, meta: dict, pdf: bytes = PDF) -> Envelope:
    ref = runtime.store.put_bytes(SIREN, pdf, name="document.pdf", role=FileRole.MAIN)
    return Envelope(tenant=SIREN, flow=flow, metadata=meta, files=[ref])


def _acte(runtime: Runtime, number: str, scenario: str = "ack") -> Envelope:
    return _env(runtime, "acte", {
        "nature": 3, "number": number, "decision_date": date.today().isoformat(),
        "subject": f"Arrêté individuel [sim:{scenario}]", "classification": "9.1",
        "classification_date": "2025-01-01", "deposit": False})


@pytest.fixture(autouse=True)
def _fresh_connectors(runtime: Runtime) -> None:
    """Each test runs its own event loop: drop connectors built on an earlier one."""
    runtime.forget_connectors()


def test_letter_is_recorded_then_answered_once(runtime: Runtime, sim: S2lowSimulator,
                                               demat, monkeypatch: pytest.MonkeyPatch) -> None:
    acte_id, letter = asyncio.run(_letter_and_answer(runtime, sim))
    monkeypatch.setenv("DEMAT_BUCKET", WORKER_BUCKET)  # the CLI reads this test's bucket
    monkeypatch.setenv("DEMAT_DATABASE_URL", runtime.settings.database)  # and database
    listed = demat("acte", "letters", acte_id, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [x["id"] for x in json.loads(listed.stdout)] == [letter["id"]]


async def _letter_and_answer(runtime: Runtime, sim: S2lowSimulator) -> tuple[str, dict]:
    acte = await _drive(runtime, _acte(runtime, "LETTRE1", "pieces"))
    assert acte.state == DocState.COMPLETED, acte.error
    (letter,) = acte.record("letters").output["letters"]
    assert letter["kind"] == "DemandePieceComplementaire" and letter["text"]
    assert letter["id_acte"] == acte.record("acknowledgement").output["official_id"]
    kept = {a.file.name for a in acte.artefacts if a.kind == "prefecture-letter"}
    assert set(letter["files"]) == kept and any(n.endswith(".pdf") for n in kept)

    answer_env = _env(runtime, "acte-followup", {"acte_document": acte.doc_id,
                                                 "action": "answer"}, minimal_pdf("pieces"))
    answer = await _drive(runtime, answer_env)
    assert answer.state == DocState.COMPLETED, answer.error
    sent = answer.record("send").output
    assert sent["letter_id"] == letter["id"] and not sent["already_sent"]
    assert answer.record("acknowledgement").output["acknowledged"] is True
    assert any(a.file.name.startswith("ARPieceComplementaire") for a in answer.artefacts)
    # the send step delivered again (crash before its result reached the router): no resend
    again = await execute(runtime, StepTask(
        doc_id=answer.doc_id, step="send", kind="acte-followup", envelope=answer_env))
    assert isinstance(again, StepDone) and again.output["already_sent"]
    answers = [t for t in sim.transactions.values()
               if t.type == letter["type"] and t.related_id == letter["id"]]
    assert len(answers) == 1
    return acte.doc_id, letter


def test_cancellation_gets_its_ararannulation_once(runtime: Runtime,
                                                   sim: S2lowSimulator) -> None:
    asyncio.run(_cancellation(runtime, sim))


async def _cancellation(runtime: Runtime, sim: S2lowSimulator) -> None:
    acte = await _drive(runtime, _acte(runtime, "ANNUL1"))
    assert acte.state == DocState.COMPLETED, acte.error
    env = _env(runtime, "acte-followup", {"acte_document": acte.doc_id, "action": "cancel",
                                          "reason": "erreur matérielle"})
    sim.failures = FailurePlan(error_rate=0.3, seed=3)  # 5xx on the way: retried
    try:
        cancel = await _drive(runtime, env)
    finally:
        sim.failures = FailurePlan()
    assert cancel.state == DocState.COMPLETED, cancel.error
    official = acte.record("acknowledgement").output["official_id"]
    names = {a.file.name for a in cancel.artefacts}
    assert f"{official}-6-1_0.xml" in names and f"{official}-6-2_0.xml" in names
    acte_tx = sim.transactions[acte.record("transmit").output["transaction_id"]]
    assert acte_tx.status == ActesStatus.CANCELLED
    assert sum(t.type == 6 and t.related_id == acte_tx.id
               for t in sim.transactions.values()) == 1


def test_archived_acte_completes_and_envelope_anomaly_is_refused(runtime: Runtime,
                                                                 sim: S2lowSimulator) -> None:
    asyncio.run(_archived_and_envelope(runtime, sim))


async def _archived_and_envelope(runtime: Runtime, sim: S2lowSimulator) -> None:
    archived = await _drive(runtime, _acte(runtime, "ARCHIVE1", "archive"))
    assert archived.state == DocState.COMPLETED, archived.error
    tid = archived.record("transmit").output["transaction_id"]
    assert sim.transactions[tid].status == ActesStatus.SAE_ARCHIVED  # past 4: success
    ack = archived.record("acknowledgement").output
    assert "-ARCHIVE1-" in ack["official_id"]
    assert any(a.kind == "stamped" for a in archived.artefacts)
    envelope = await _drive(runtime, _acte(runtime, "ENVANO1", "envelope"))
    assert envelope.state == DocState.ERROR and "PREF-VERIF-02" in envelope.error.message
    assert any(a.file.name.startswith("AnomalieEnveloppe") for a in envelope.artefacts)


def test_followups_are_refused_at_intake_with_the_field_named(runtime: Runtime) -> None:
    asyncio.run(_refusals(runtime))


async def _refusals(runtime: Runtime) -> None:
    stuck = await _drive(runtime, _acte(runtime, "ERREUR1", "error"))
    assert stuck.state == DocState.ERROR and stuck.error.error_class == "BusinessRefusal"
    refused = await _drive(runtime, _acte(runtime, "REFUS1", "refused"))
    assert refused.state == DocState.ERROR and "refused" in refused.error.message
    assert refused.record("acknowledgement").attempts == 1  # a refusal is not retried
    acked = await _drive(runtime, _acte(runtime, "SANSLETTRE1"))
    cases = [({"acte_document": "nope", "action": "cancel"}, "metadata.acte_document"),
             ({"acte_document": stuck.doc_id, "action": "cancel"}, "metadata.acte_document"),
             ({"acte_document": acked.doc_id, "action": "answer"}, "metadata.letter_id")]
    for meta, field in cases:
        with pytest.raises(intake.SubmissionError) as err:
            await intake.check_flow(runtime, _env(runtime, "acte-followup", meta))
        assert err.value.field == field


def test_classification_is_cached_and_a_platform_outage_defers_or_uses_the_last_copy(
        runtime: Runtime, settings: Settings) -> None:
    asyncio.run(_classification(runtime, settings))


async def _classification(runtime: Runtime, settings: Settings) -> None:
    await intake.check_flow(runtime, _acte(runtime, "CLASSIF1"))  # fetched from S²LOW...
    cached = runtime.store.get_json(cache_key(SIREN))  # ... and cached in the object store
    assert cached and "9.1" in cached["classification"]["subjects"]

    other = "213000011"  # a tenant whose S²LOW cannot be reached
    down = ConnectorConfig(type="s2low", options={"url": "http://127.0.0.1:9", "timeout": 1})
    rt = Runtime(settings)
    rt.__dict__["tenants"] = TenantRegistry([Tenant(
        siren=other, name="Hors ligne", settings={"actes": ACTES}, connectors={"s2low": down})])
    with contextlib.suppress(Exception):
        rt.store.client.remove_object(rt.store.bucket, cache_key(other))
    env = _acte(runtime, "CLASSIF2").model_copy(update={"tenant": other})
    await intake.check_flow(rt, env)  # nothing known: intake defers to the validate step
    with pytest.raises(TransientError, match="classification"):
        await intake.check_flow(rt, env, at_intake=False)  # which retries until S²LOW answers
    stale = default_classification()
    del stale.subjects["9.1"]
    rt.store.put_json(cache_key(other), {
        "fetched_at": (utcnow() - timedelta(days=3)).isoformat(),
        "classification": stale.model_dump(mode="json")})
    with pytest.raises(intake.SubmissionError) as err:  # the last copy is used
        await intake.check_flow(rt, env)
    assert err.value.field == "metadata.classification" and "9.1" in err.value.message

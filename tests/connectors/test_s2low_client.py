"""S²LOW client against the S²LOW simulator, over real HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from datetime import date

import httpx
import pytest

from connectors.errors import BusinessRefusal, PermanentError, TransientError
from connectors.s2low import actes as A
from connectors.s2low.client import (
    ActesStatus,
    DuplicateActeError,
    S2lowClient,
    TransactionStatus,
)
from connectors.s2low.simulator import S2lowSimulator
from connectors.simulator import FailurePlan
from schemas.acte import ActeMetadata

PDF = b"%PDF-1.4\n% deliberation\n%%EOF\n"
USERS = {"mairie": "secret"}


def _meta(number: str = "DEL20250925_37", **changes: object) -> ActeMetadata:
    data: dict[str, object] = {
        "nature": 1, "number": number, "decision_date": date(2025, 9, 25),
        "subject": "Vote du budget primitif", "classification": "7.1",
        "classification_date": date(2025, 1, 1),
        "annexes": [{"file_name": "note.pdf", "typology": "41_NC"}]}
    return ActeMetadata(**(data | changes))


@pytest.fixture()
async def sim() -> AsyncIterator[S2lowSimulator]:
    simulator = S2lowSimulator(users=USERS, scenarios={"ANOM1": "anomaly", "REF1": "refused"})
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture()
async def client(sim: S2lowSimulator) -> AsyncIterator[S2lowClient]:
    c = S2lowClient(sim.base_url, login="mairie", password="secret", timeout=2)
    yield c
    await c.aclose()


async def _wait(client: S2lowClient, tid: int, wanted: Iterable[int],
                timeout: float = 5) -> TransactionStatus:
    deadline = time.monotonic() + timeout
    while True:
        status = await client.get_status(tid)
        if status.status in set(wanted):
            return status
        assert time.monotonic() < deadline, f"still {status.status}: {status.message}"
        await asyncio.sleep(0.02)


async def test_acknowledged_with_official_id_tampon_and_classification(
        sim: S2lowSimulator, client: S2lowClient) -> None:
    result = await client.submit_acte(_meta(), PDF, [PDF])
    assert result.created
    status = await _wait(client, result.transaction_id, [ActesStatus.ACK_RECEIVED])
    assert isinstance(status.reply, A.ARActe)
    assert status.reply.id_acte == "069-216900910-20250925-DEL20250925_37-DE"
    assert status.reply.date_reception == date.today()
    status.raise_for_refusal()  # no refusal
    ar, _ = await client.get_aractes(result.transaction_id)
    assert ar.acte.annexes[0].startswith("41_NC-069-216900910-20250925")
    stamped = await client.get_stamped(result.transaction_id)
    assert stamped.startswith(PDF) and b"Tampon S2LOW" in stamped
    classification = await client.get_classification()
    assert classification.has("7.1") and not classification.has("7.9")
    envelope = A.verify_archive(*sim.archives[1])  # what S²LOW sends on is valid ACTES
    assert envelope.envelope.siren == "216900910"


async def test_life_cycle_goes_through_transmission() -> None:
    sim = S2lowSimulator(step_delay=0.5)  # long enough to see status 1 under load
    sim.start()
    client = S2lowClient(sim.base_url, timeout=2)
    try:
        tid = await client.create_acte_transaction(_meta(), PDF, [PDF])
        seen = {(await client.get_status(tid)).status}
        while ActesStatus.ACK_RECEIVED not in seen:
            await asyncio.sleep(0.01)
            seen.add((await client.get_status(tid)).status)
        assert {1, 2, 3, 4} <= seen
    finally:
        await client.aclose()
        sim.stop()


async def test_anomaly_and_refusal_are_business_refusals(client: S2lowClient) -> None:
    tid = await client.create_acte_transaction(_meta("ANOM1"), PDF, [PDF])
    status = await _wait(client, tid, [ActesStatus.ERROR])
    assert isinstance(status.reply, A.AnomalieActe) and status.reply.nature == "002"
    assert "Anomalie" in status.message
    with pytest.raises(BusinessRefusal, match="anomaly 002"):
        status.raise_for_refusal()
    tid = await client.create_acte_transaction(_meta("REF1"), PDF, [PDF])
    with pytest.raises(BusinessRefusal, match="refused"):
        (await _wait(client, tid, [ActesStatus.REFUSED])).raise_for_refusal()
    marker = await client.create_acte_transaction(
        _meta("ERR1", subject="Acte [sim:error]"), PDF, [PDF])
    assert (await _wait(client, marker, [-1])).message == "Erreur lors de la transmission"


async def test_platform_rejections_are_permanent(sim: S2lowSimulator,
                                                 client: S2lowClient) -> None:
    await client.create_acte_transaction(_meta(), PDF, [PDF])
    with pytest.raises(DuplicateActeError, match="même numéro interne"):
        await client.create_acte_transaction(_meta(), PDF, [PDF])
    with pytest.raises(PermanentError, match="Numéro de transaction invalide"):
        await client.get_status(999)
    sim.scenarios["STUCK1"] = "stuck"
    stuck = await client.create_acte_transaction(_meta("STUCK1"), PDF, [PDF])
    assert (await client.get_status(stuck)).status == ActesStatus.TRANSMITTED
    with pytest.raises(PermanentError, match="annuler"):  # only acknowledged actes
        await client.cancel(stuck)
    bad = S2lowClient(sim.base_url, login="mairie", password="wrong", timeout=2)
    with pytest.raises(PermanentError, match="authentification"):
        await bad.get_status(1)
    await bad.aclose()


async def test_cancellation_produces_ararannulation(client: S2lowClient) -> None:
    tid = await client.create_acte_transaction(_meta("CANCEL1"), PDF, [PDF])
    await _wait(client, tid, [ActesStatus.ACK_RECEIVED])
    cancel_id = await client.cancel(tid)
    status = await _wait(client, cancel_id, [ActesStatus.ACK_RECEIVED])
    assert isinstance(status.reply, A.ARAnnulation)
    assert status.reply.id_acte == "069-216900910-20250925-CANCEL1-DE"
    assert (await client.get_status(tid)).status == ActesStatus.CANCELLED


@pytest.mark.parametrize(("scenario", "letter", "ar_kind"), [
    ("pieces", "DemandePieceComplementaire", "ARPieceComplementaire"),
    ("observations", "LettreObservations", "ARReponseRejetLettreObservations"),
    ("courrier", "CourrierSimple", None),
])
async def test_prefecture_letter_and_answer(sim: S2lowSimulator, client: S2lowClient,
                                            scenario: str, letter: str,
                                            ar_kind: str | None) -> None:
    sim.scenarios["LET1"] = scenario
    tid = await client.create_acte_transaction(_meta("LET1"), PDF, [PDF])
    await _wait(client, tid, [ActesStatus.ACK_RECEIVED])
    docs = await client.list_prefecture_documents(tid)
    assert len(docs) == 1 and docs[0].status in (ActesStatus.LETTER_AR_SENT,
                                                 ActesStatus.LETTER_NO_AR)
    doc = await client.get_prefecture_document(docs[0].id)
    assert doc.message.kind == letter
    assert doc.message.id_acte == "069-216900910-20250925-LET1-DE"
    assert doc.message.document in doc.files
    answer = await client.reply_to_prefecture(docs[0].id, PDF, annexes=[("b.pdf", PDF, "99_AU")])
    final = ActesStatus.LETTER_ANSWER_ACK if ar_kind else ActesStatus.TRANSMITTED
    status = await _wait(client, answer, [final])
    if ar_kind:
        assert isinstance(status.reply, A.ARReponse) and status.reply.kind == ar_kind
        assert status.reply.id_acte == doc.message.id_acte


async def test_defere_and_refused_answer(sim: S2lowSimulator, client: S2lowClient) -> None:
    sim.scenarios |= {"DEF1": "defere", "OBS2": "observations"}
    tid = await client.create_acte_transaction(_meta("DEF1"), PDF, [PDF])
    await _wait(client, tid, [ActesStatus.ACK_RECEIVED])
    (ref,) = await client.list_prefecture_documents(tid)
    defere = await client.get_prefecture_document(ref.id)
    assert isinstance(defere.message, A.DefereTA) and defere.message.nature_illegalite
    with pytest.raises(PermanentError):  # a referral to the court gets no answer here
        await client.reply_to_prefecture(ref.id, PDF)
    tid = await client.create_acte_transaction(_meta("OBS2"), PDF, [PDF])
    await _wait(client, tid, [ActesStatus.ACK_RECEIVED])
    (ref,) = await client.list_prefecture_documents(tid)
    answer = await client.reply_to_prefecture(ref.id, PDF, refuse=True)
    await _wait(client, answer, [ActesStatus.LETTER_ANSWER_ACK])
    form = next(d for n, d in A.unpack(sim.archives[sim.transactions[answer].envelope_id][1])
                .items() if n.endswith("-4-3_0.xml"))
    assert A.parse_message(form).kind == "RejetLettreObservations"


async def test_server_errors_and_timeouts_are_transient(sim: S2lowSimulator,
                                                        client: S2lowClient) -> None:
    sim.failures = FailurePlan(error_rate=1.0)
    with pytest.raises(TransientError, match="503"):
        await client.get_status(1)
    with pytest.raises(TransientError, match="503"):
        await client.create_acte_transaction(_meta(), PDF, [PDF])
    assert sim.transactions == {}  # a 503 has no effect
    sim.failures = FailurePlan(timeout_rate=1.0, timeout_seconds=1.0)
    fast = S2lowClient(sim.base_url, login="mairie", password="secret", timeout=0.3)
    with pytest.raises(TransientError, match="timeout"):
        await fast.create_acte_transaction(_meta(), PDF, [PDF])
    await fast.aclose()
    dead = S2lowClient("http://127.0.0.1:9", timeout=0.5)
    with pytest.raises(TransientError):
        await dead.get_classification()
    await dead.aclose()


async def test_resubmission_after_lost_answer_transmits_once(sim: S2lowSimulator,
                                                             client: S2lowClient) -> None:
    meta = _meta("ONCE1")
    sim.failures = FailurePlan(timeout_rate=1.0, timeout_seconds=1.0)
    fast = S2lowClient(sim.base_url, login="mairie", password="secret", timeout=0.3)
    with pytest.raises(TransientError):  # S²LOW took the acte but the answer was lost
        await fast.create_acte_transaction(meta, PDF, [PDF])
    await fast.aclose()
    sim.failures = FailurePlan()
    found = await client.find_transaction(meta.number, meta.decision_date)
    assert found is not None
    again = await client.submit_acte(meta, PDF, [PDF])  # the step is retried
    assert again.transaction_id == found.id and not again.created
    status = await _wait(client, again.transaction_id, [ActesStatus.ACK_RECEIVED])
    assert status.reply.id_acte.endswith("-ONCE1-DE")
    assert sim.submissions.count(meta.key("216900910")) == 1
    assert sim.submissions.duplicates() == {}
    counts = httpx.get(f"{sim.base_url}/_sim/counts").json()
    assert counts["submissions"] == {"216900910-20250925-ONCE1": 1}

"""The hostile corpus through the SDK on the real embedded stack: each case is refused
before upload naming its field, or rejected at intake naming it (the identities read in
the file); the good documents submitted right after complete."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from bus.client import DematClient
from bus.dev.launcher import Services
from bus.intake import SubmissionError
from bus.settings import Settings
from schemas.messages import DocState
from tests.hostile.corpus import CITY_A, Case, base, load_cases

pytestmark = pytest.mark.stack
CASES = load_cases()
# the good documents after the corpus: one per flow whose refusals come from intake
GOOD_AFTER = ("document", "payslip", "helios", "invoice")


async def _outcome(client: DematClient, case: Case) -> tuple[str, str | None]:
    """``("refused", field)`` at the door, else the document's final state and field."""
    try:
        receipt = await client.submit(case.flow, list(case.files), tenant=case.tenant,
                                      metadata=case.metadata, key=case.key)
    except SubmissionError as exc:
        return "refused", exc.field
    state = await client.wait(receipt.doc_id, 120)
    assert state is not None, f"{case.id}: no state"
    return state.state.value, state.error.field if state.error else None


async def _corpus_then_good(settings: Settings) -> tuple[dict, dict]:
    async with DematClient(settings) as client:
        outcomes = dict(zip([c.id for c in CASES], await asyncio.gather(
            *(_outcome(client, c) for c in CASES)), strict=True))
        tag = uuid.uuid4().hex[:6].upper()
        receipts = {}
        for flow in GOOD_AFTER:
            meta, files = base(flow, CITY_A, tag)
            receipts[flow] = await client.submit(flow, files, tenant=CITY_A, metadata=meta)
        states = await asyncio.gather(*(client.wait(r.doc_id, 240) for r in receipts.values()))
        return outcomes, dict(zip(receipts, states, strict=True))


def test_the_corpus_is_refused_through_the_sdk_and_the_bus_goes_on(
        settings: Settings, services: Services) -> None:
    outcomes, good = asyncio.run(_corpus_then_good(settings))
    expected = {c.id: ("rejected" if c.at == "intake" else "refused", c.field) for c in CASES}
    wrong = {i: (outcomes[i], expected[i]) for i in expected if outcomes[i] != expected[i]}
    assert not wrong, wrong
    for flow, state in good.items():
        assert state is not None and state.state == DocState.COMPLETED, (
            flow, state and state.state, state and state.error)
    assert services.running(), "a worker died"

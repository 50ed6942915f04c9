"""The hostile corpus through the SDK's checks and intake's, without a stack: every case
is refused naming its field; every flow's good document passes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus import client as client_module
from bus import intake
from bus.client import DematClient
from bus.intake import SubmissionError
from bus.runtime import Runtime
from bus.settings import Settings
from tests.hostile.corpus import BASES, NIR, Case, base, load_cases
from tests.hostile.memstore import MemFiles

CASES = load_cases()
# flows whose family check reads only the tenant configuration and the file (the acte
# check asks the prefecture platform for its classification)
OFFLINE_CHECKS = {"document", "payslip", "helios", "invoice", "invoice-in", "hr-decree"}
PERSONAL = ("nir", "email", "agent_name", "birth_name", "net_amount", "agent_email")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DematClient]:
    """The SDK on a runtime with an in-memory store and no database (prepare and the
    checks use neither the broker nor the index)."""
    runtime = Runtime(Settings(var_dir=tmp_path_factory.mktemp("var")))
    runtime.__dict__.update(store=MemFiles(), states=None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(client_module, "Runtime", lambda *_: runtime)
        sdk = DematClient(runtime.settings)
    yield sdk
    sdk._pool.shutdown(wait=False)


def refusal(client: DematClient, case: Case) -> SubmissionError | None:
    """The refusal of ``case`` by the SDK's prepare (``case.at == "door"``), else by
    intake's checks; ``None`` if it passes them all."""
    runtime = client.runtime
    try:
        env = client.prepare(case.flow, list(case.files), tenant=case.tenant,
                             metadata=case.metadata, key=case.key)
    except SubmissionError as exc:
        assert case.at == "door", f"{case.id}: refused at the door, not at intake"
        return exc
    try:
        intake.check_envelope(env, runtime.flows, runtime.tenants)
        intake.check_stored_files(env, runtime.store)
        if env.flow in OFFLINE_CHECKS:
            asyncio.run(intake.check_flow(runtime, env))
    except SubmissionError as exc:
        assert case.at == "intake", f"{case.id}: passed the door, refused at intake"
        return exc
    return None


def test_the_corpus_is_large_and_unique() -> None:
    assert len(CASES) >= 70 and len({c.id for c in CASES}) == len(CASES)
    assert {c.flow for c in CASES} == set(BASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_hostile_case_is_refused_naming_its_field(client: DematClient, case: Case
                                                       ) -> None:
    exc = refusal(client, case)
    assert exc is not None, f"{case.id} was accepted"
    assert exc.field == case.field, f"{case.id}: {exc.field}: {exc}"
    assert "Traceback" not in str(exc)
    if case.flow == "payslip":  # a refusal never repeats a personal value
        shown = str(exc)
        assert NIR not in shown
        for key in PERSONAL:
            value = case.metadata.get(key)
            if isinstance(value, str) and len(value.strip()) > 3:
                assert value.strip() not in shown, (case.id, key)


@pytest.mark.parametrize("flow", sorted(BASES))
def test_each_flows_good_document_passes(client: DematClient, flow: str) -> None:
    meta, files = base(flow)
    good = Case(id=f"good-{flow}", flow=flow, tenant="216900910", metadata=meta,
                files=files, key=None, field="")
    exc = refusal(client, good)
    if flow == "invoice-in":  # made by the import only: a producer is refused
        assert exc is not None and exc.field == "flow"
        client.producer_name = "chorus-import"
        try:
            exc = refusal(client, good)
        finally:
            client.producer_name = "sdk"
    assert exc is None, f"{flow}: {exc and exc.field}: {exc}"


def test_a_good_document_after_the_corpus_still_passes(client: DematClient,
                                                       tmp_path: Path) -> None:
    for case in CASES[:5]:
        assert refusal(client, case) is not None
    meta, files = base("document")
    assert refusal(client, Case("after", "document", "216900910", meta, files, None, "")) \
        is None

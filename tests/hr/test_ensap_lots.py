"""The ENSAP step's lots, with an in-memory store and the real ENSAP simulator: the
leader sends once when the lot is complete, members complete from ENSAP's receipt,
a redelivered task never sends again, a refused lot ends every member."""

from __future__ import annotations

import asyncio
import hashlib
import time
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from bus.flows import FlowRegistry
from bus.settings import Settings
from bus.tenants import TenantRegistry
from connectors.ensap.client import EnsapClient
from connectors.ensap.envelope import Emitter
from connectors.ensap.simulator import EnsapSimulator
from connectors.errors import BusinessRefusal
from schemas.envelope import Envelope, FileRef
from schemas.messages import StepTask
from tests.hr.payroll_fixtures import SIRET, sample_nir
from workers.common.demo import minimal_pdf
from workers.payroll import ensap
from workers.step import StepContext, StepResultData, Waiting

TENANT = "216900910"


class MemoryStore:
    """The few object-store calls the step makes, in memory."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.records: dict[str, Any] = {}
        self.written: dict[str, float] = {}

    def put_bytes(self, tenant: str, data: bytes, *, name: str, media_type: str | None = None,
                  encrypt: bool = False, role: Any = "annex", unique: bool = False) -> FileRef:
        sha = hashlib.sha256(data).hexdigest()
        self.files[sha] = data
        return FileRef(sha256=sha, size=len(data), media_type=media_type or "application/pdf",
                       name=name)

    def read_file(self, tenant: str, ref: FileRef) -> bytes:
        return self.files[ref.sha256]

    def iter_file(self, tenant: str, ref: FileRef):
        yield self.files[ref.sha256]

    def stat_file(self, tenant: str, sha: str) -> int | None:
        return len(self.files[sha]) if sha in self.files else None

    def get_json(self, key: str) -> Any:
        return self.records.get(key)

    def put_json(self, key: str, value: Any) -> None:
        self.records[key] = value
        self.written[key] = time.time()

    def put_record(self, key: str, data: bytes, *, content_type: str = "") -> None:
        self.put_json(key, data)

    def list_times(self, prefix: str) -> dict[str, float]:
        return {k: t for k, t in self.written.items() if k.startswith(prefix)}


@pytest.fixture()
def bus(monkeypatch: pytest.MonkeyPatch):
    sim = EnsapSimulator()
    server = sim.serve()
    client = EnsapClient(server.base_url, Emitter(TENANT, sre_name="SIM", sre_code="21690"))
    runtime = SimpleNamespace(store=MemoryStore(), flows=FlowRegistry.load(), settings=None,
                              woken=[])

    async def wake(runtime: Any, doc_ids: Any, step: str, reason: str,
                   progress: Any = None) -> None:
        runtime.woken.append((sorted(doc_ids), step, reason, progress))

    monkeypatch.setattr(ensap, "wake", wake)
    yield sim, server.base_url, client, runtime
    server.stop()


def _ctx(runtime, client, index: int, size: int, lot: str = "run-1", progress=None,
         pdf: bytes | None = None) -> StepContext:
    pdf = pdf or minimal_pdf(f"bulletin {index}")
    ref = runtime.store.put_bytes(TENANT, pdf, name=f"bp-{index}.pdf")
    nir = sample_nir(index)
    env = Envelope(tenant=TENANT, flow="payslip", files=[ref], metadata={
        "matricule": f"M{index:04d}", "period": "2026-11", "employer_siret": SIRET,
        "nir": nir, "agent_name": f"Agent {index}", "birth_date": "1980-02-03",
        "net_amount": "1999.99", "channels": ["ensap"],
        "ensap_batch": {"id": lot, "index": index, "size": size}})
    flow = runtime.flows.get("payslip")
    task = StepTask(doc_id=env.id, step="ensap", kind="payslip-ensap", envelope=env,
                    progress=progress or {})
    tenant = TenantRegistry.load(Settings().tenants_path).get(TENANT)
    ctx = StepContext(runtime, task, tenant, flow.step("ensap"))
    ctx.connector = lambda: client  # type: ignore[method-assign]
    return ctx


def test_lot_sent_once_when_complete_and_members_complete(bus) -> None:
    _sim, url, client, runtime = bus

    async def go() -> None:
        leader, member = _ctx(runtime, client, 0, 2), _ctx(runtime, client, 1, 2)
        first = await ensap.run(leader)  # alone in its lot so far: waits
        assert isinstance(first, Waiting) and first.progress["lot"] == f"{TENANT}-run-1"
        assert isinstance(await ensap.run(member), Waiting)  # members never send
        again = _ctx(runtime, client, 0, 2, progress=first.progress)
        again.task = leader.task.model_copy(update={"progress": first.progress})
        done = await ensap.run(again)
        assert isinstance(done, StepResultData) and done.output["lot_size"] == 2
        member_id = member.task.envelope.id
        (woken, step, reason, told), = runtime.woken
        assert (woken, step, reason) == ([member_id], "ensap",
                                         f"ENSAP lot {TENANT}-run-1: accepted")
        assert told[member_id]["outcome"]["numero_ordre"] == "2"
        redelivered = await ensap.run(again)  # a redelivered task asks ENSAP first
        assert isinstance(redelivered, StepResultData)
        polled = member.task.model_copy(update={"progress": first.progress})
        member.task = polled
        mine = await ensap.run(member)  # a poll (wake lost): reads the lot's outcome record
        assert isinstance(mine, StepResultData) and mine.output["numero_ordre"] == "2"
        # woken: what the wake told it is enough, nothing is read, ENSAP is not asked
        member.task = polled.model_copy(update={"progress": first.progress | told[member_id]})
        runtime.store.get_json = runtime.store.read_file = None  # any read would fail
        told_done = await ensap.run(member)
        assert isinstance(told_done, StepResultData)
        assert told_done.output == mine.output | {"lot_size": 2}

    asyncio.run(go())
    counts = httpx.get(f"{url}/_sim/counts").json()
    assert counts["lots"] == {f"{TENANT}-run-1": 1} and counts["pay_slips"] == 2
    # the leader asks ENSAP on its first look, before sending and when redelivered (it is
    # queued: it reads the outcome); the member only before joining
    assert counts["lookups"] == {f"{TENANT}-run-1": 3}


def test_refused_lot_ends_every_member(bus) -> None:
    _sim, url, client, runtime = bus

    async def go() -> None:
        leader = _ctx(runtime, client, 0, 2, lot="run-2", pdf=b"not a PDF at all")
        member = _ctx(runtime, client, 1, 2, lot="run-2")
        waiting = await ensap.run(member)
        assert isinstance(waiting, Waiting)
        with pytest.raises(BusinessRefusal, match="not a PDF"):
            await ensap.run(leader)
        (_, _, reason, told), = runtime.woken
        assert reason == f"ENSAP lot {TENANT}-run-2: refused"
        queued = member.task.model_copy(update={"progress": waiting.progress})
        for progress in (waiting.progress | told[member.task.envelope.id], waiting.progress):
            member.task = queued.model_copy(update={"progress": progress})  # woken, polled
            with pytest.raises(BusinessRefusal, match="not a PDF"):
                await ensap.run(member)

    asyncio.run(go())
    assert httpx.get(f"{url}/_sim/counts").json()["lots"] == {f"{TENANT}-run-2": 1}

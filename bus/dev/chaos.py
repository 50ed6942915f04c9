"""``demat chaos``: documents through the bus while processes die and partners fail.

It starts its own embedded stack and workers in a fresh directory, makes the
simulators fail (HTTP 5xx and answers lost to timeouts), SIGKILLs random worker
processes, restarts the broker once, and then checks that every document
reached a terminal state, that no partner received an effect twice, and that
every document's journal is complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from bus.client import DematClient
from bus.dev.embedded import EmbeddedStack
from bus.dev.launcher import Services, service_groups, wait_until
from bus.index import Index
from bus.settings import Settings
from schemas.messages import DocumentState
from workers.common.demo import DEMO_TENANTS

TERMINAL_EVENTS = {"completed", "error", "rejected", "duplicate"}


@dataclass
class ChaosReport:
    documents: int
    kills: int = 0
    broker_restarts: int = 0
    completed: int = 0
    errors: int = 0
    lost: int = 0
    duplicate_effects: int = 0
    journal_consistent: bool = False
    journal_problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (self.lost == 0 and self.duplicate_effects == 0 and self.journal_consistent)


@dataclass
class ChaosPlan:
    documents: int = 500
    kills: int = 10
    broker_restarts: int = 1
    error_rate: float = 0.20
    timeout_rate: float = 0.05
    timeout_seconds: float = 7.0  # longer than the WebDAV client's 5 s timeout
    kill_interval: float = 4.0
    deadline: float = 900.0
    seed: int | None = None


def run_chaos(var_dir: Path, plan: ChaosPlan, log=print) -> ChaosReport:
    """Run one chaos session in ``var_dir`` (created fresh) and report."""
    rng = random.Random(plan.seed)
    var_dir.mkdir(parents=True, exist_ok=True)
    stack = EmbeddedStack(var_dir)
    services = Services(var_dir, env={
        "DEMAT_SIM_ERROR_RATE": str(plan.error_rate),
        "DEMAT_SIM_TIMEOUT_RATE": str(plan.timeout_rate),
        "DEMAT_SIM_TIMEOUT_SECONDS": str(plan.timeout_seconds)})
    settings = Settings(var_dir=var_dir)
    report = ChaosReport(documents=plan.documents)
    started = time.monotonic()
    stack.start()
    try:
        services.start()
        wait_until(lambda: (var_dir / "simulators.json").exists(), 60)
        ids = asyncio.run(_submit(settings, plan.documents, var_dir / "inputs"))
        log(f"submitted {len(ids)} documents; killing workers and restarting the broker")
        _havoc(plan, rng, stack, services, report, log)
        states = asyncio.run(_wait_terminal(settings, ids, plan.deadline, services))
        _judge(settings, ids, states, report)
    finally:
        services.stop()
        stack.stop()
    report.seconds = round(time.monotonic() - started, 1)
    return report


async def _submit(settings: Settings, count: int, inputs: Path) -> list[str]:
    inputs.mkdir(parents=True, exist_ok=True)
    gate = asyncio.Semaphore(16)
    async with DematClient(settings, producer_name="chaos") as client:
        async def one(i: int) -> str:
            path = inputs / f"doc-{i:05d}.txt"
            path.write_text(f"chaos document {i} {time.time_ns()}\n")
            async with gate:
                receipt = await client.submit(
                    "document", [path], tenant=DEMO_TENANTS[i % len(DEMO_TENANTS)],
                    # the deposit path is what chaos proves; archival waits on its own
                    # partner and has its own failure tests (tests/archive)
                    metadata={"title": f"chaos {i}", "archive": False},
                    key=f"chaos-{i}")
            return receipt.doc_id

        return list(await asyncio.gather(*(one(i) for i in range(count))))


def _havoc(plan: ChaosPlan, rng: random.Random, stack: EmbeddedStack, services: Services,
           report: ChaosReport, log) -> None:
    restart_at = max(1, plan.kills // 2)
    for n in range(1, plan.kills + 1):
        _pause(services, plan.kill_interval)
        group = rng.choice(service_groups())
        pid = services.pids.get(group)
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            report.kills += 1
            log(f"  SIGKILL {group} (pid {pid})")
        services.supervise()
        if n == restart_at and report.broker_restarts < plan.broker_restarts:
            log("  broker: SIGKILL and restart")
            stack.restart_broker()
            report.broker_restarts += 1
    if plan.kills == 0 and plan.broker_restarts:
        stack.restart_broker()
        report.broker_restarts += 1


def _pause(services: Services, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        services.supervise()
        time.sleep(0.2)


async def _wait_terminal(settings: Settings, ids: list[str], deadline: float,
                         services: Services) -> dict[str, DocumentState | None]:
    end = time.monotonic() + deadline
    states: dict[str, DocumentState | None] = {}
    async with DematClient(settings, producer_name="chaos") as client:
        pending = list(ids)
        while pending and time.monotonic() < end:
            services.supervise()
            found = await asyncio.gather(*(client.status(d) for d in pending))
            for doc_id, state in zip(pending, found, strict=True):
                states[doc_id] = state
            pending = [d for d in pending if not (states[d] and states[d].state.terminal)]
            if pending:
                await asyncio.sleep(1.0)
    return states


def _judge(settings: Settings, ids: list[str], states: dict[str, DocumentState | None],
           report: ChaosReport) -> None:
    terminal = {d: s for d, s in states.items() if s is not None and s.state.terminal}
    report.lost = len(ids) - len(terminal)
    report.completed = sum(s.state.value == "completed" for s in terminal.values())
    report.errors = sum(s.state.value == "error" for s in terminal.values())
    sims = json.loads((settings.var_dir / "simulators.json").read_text())
    dupes = httpx.get(f"{sims['webdav']}/_sim/counts", timeout=10).json()["duplicates"]
    report.duplicate_effects = len(dupes)
    index = Index(settings.database)
    wait_until(lambda: _journal_problems(index, terminal) == [], 60, interval=1.0)
    report.journal_problems = _journal_problems(index, terminal)[:20]
    report.journal_consistent = not report.journal_problems


def _journal_problems(index: Index, states: dict[str, DocumentState]) -> list[str]:
    problems = []
    for doc_id, state in states.items():
        events = index.events(doc_id)
        seqs = [e["seq"] for e in events]
        if seqs != list(range(1, state.seq + 1)):
            problems.append(f"{doc_id}: journal has seq {seqs[-3:] if seqs else []}, "
                            f"state is at {state.seq}")
        elif events[-1]["type"] not in TERMINAL_EVENTS or events[-1]["state"] != state.state:
            problems.append(f"{doc_id}: last event {events[-1]['type']} does not match "
                            f"state {state.state.value}")
    return problems


def report_json(report: ChaosReport) -> str:
    return json.dumps(asdict(report) | {"ok": report.ok}, indent=2)

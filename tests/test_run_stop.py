"""``demat run`` stopped by SIGTERM, or by SIGHUP (its terminal closed), stops every
process it started (its own stack on a fresh data directory: store, broker, database,
workers, simulators, API)."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bus.dev.embedded import free_ports, pid_alive
from bus.dev.launcher import wait_until

pytestmark = pytest.mark.stack
ROOT = Path(__file__).resolve().parents[1]


def _children() -> dict[int, list[int]]:
    """Every process's children, from ``/proc``."""
    found: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
    return found


def _descendants(pid: int) -> set[int]:
    children, found, todo = _children(), set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _started(var: Path) -> bool:
    """The stack, every worker group and the API are up (their pids recorded)."""
    try:
        services = json.loads((var / "services.json").read_text())
        stack = json.loads((var / "stack.json").read_text())
    except (OSError, ValueError):
        return False
    return ("api" in services and all(pid_alive(p) for p in services.values())
            and all(pid_alive(p) for p in stack.get("pids", {}).values()))


@pytest.mark.timeout(600)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stop_signal_stops_every_process_demat_run_started(
        tmp_path: Path, sig: signal.Signals) -> None:
    var = tmp_path / "var"
    env = os.environ | {"DEMAT_VAR_DIR": str(var), "DEMAT_API_PORT": str(free_ports(1)[0])}
    with (tmp_path / "run.log").open("wb") as log:
        run = subprocess.Popen([sys.executable, "-m", "bus.cli", "run", "--no-demo"], env=env,
                               cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    started: set[int] = set()
    try:
        assert wait_until(lambda: _started(var), 300), (tmp_path / "run.log").read_text()
        stack_pids = set(json.loads((var / "stack.json").read_text())["pids"].values())
        started = _descendants(run.pid) | stack_pids
        assert len(started) >= 8, started  # store, broker, database, groups, simulators, API
        run.send_signal(sig)
        assert run.wait(180) == 0
        survivors = {p for p in started if pid_alive(p)}
        assert not survivors, survivors
        assert not (var / "services.json").exists() and not (var / "stack.json").exists()
    finally:  # on failure, leave nothing behind
        if run.poll() is None:
            run.kill()
        for pid in started:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)

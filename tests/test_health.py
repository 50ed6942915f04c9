"""Health on the real embedded stack: each service group's heartbeat, readiness (broker,
store, index, partitions) and ``demat doctor`` naming what is wrong in words."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from bus.dev.launcher import Services
from bus.health import STALE, Heartbeat, health_dir, liveness
from bus.settings import Settings

pytestmark = pytest.mark.stack


def _checks(run) -> dict[str, dict]:
    assert run.stdout, run.stderr
    return {c["name"]: c for c in json.loads(run.stdout)["checks"]}


def _wait_live(demat, group: str, timeout: float = 60) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        run = demat("health", group, "--ready", "--json")
        if run.returncode == 0 or time.monotonic() > deadline:
            return _checks(run)
        time.sleep(2)


def test_running_groups_are_ready_and_the_doctor_is_content(demat, services: Services) -> None:
    for group in ("router", "steps", "delays"):
        checks = _wait_live(demat, group)
        assert all(c["ok"] for c in checks.values()), checks
        assigned = checks[f"{group} consumers"]["detail"]
        assert assigned.endswith("partition(s) assigned") and int(assigned.split()[0]) > 0
        assert {"broker", "store", "index"} <= set(checks)
    run = demat("doctor", "--json")
    checks = _checks(run)
    print(demat("doctor").stdout)  # what an operator reads (shown with -s)
    assert run.returncode == 0, [c for c in checks.values() if not c["ok"]]
    assert checks["schema"]["ok"] and checks["sealing"]["ok"] and checks["router live"]["ok"]


def test_what_is_down_is_named(demat, stack, settings: Settings) -> None:
    run = demat("doctor", "--json", env={"DEMAT_DATABASE_URL":
                                         "postgresql://nobody@127.0.0.1:1/none"})
    checks = _checks(run)
    assert run.returncode == 1 and not checks["index"]["ok"]
    assert "PostgreSQL does not answer" in checks["index"]["detail"]
    assert checks["broker"]["ok"] and "schema" not in checks  # skipped: nothing to ask
    run = demat("health", "ghost", "--ready")
    assert run.returncode == 1 and "no process of group ghost" in run.stdout
    run = demat("doctor", env={"DEMAT_KAFKA_BOOTSTRAP": "127.0.0.1:1"})
    assert run.returncode == 1 and "FAIL  broker: Kafka at 127.0.0.1:1 does not answer" \
        in run.stdout


def test_a_stale_heartbeat_reads_as_hung(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    beat = Heartbeat(settings, ["ghost"])
    beat.write()
    assert liveness(settings, "ghost", socket.gethostname()).ok
    data = json.loads(beat.path.read_text())
    beat.path.write_text(json.dumps(data | {"at": time.time() - STALE - 5}))
    check = liveness(settings, "ghost")
    assert not check.ok and "hung or was killed" in check.detail
    assert not liveness(settings, "ghost", "another-host").ok
    assert [p.name for p in health_dir(settings).iterdir()] == [beat.path.name]

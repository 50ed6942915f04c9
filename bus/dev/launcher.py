"""Worker processes of the bus: one per service group, supervised.

``demat run``, ``demat demo`` and the tests start the same processes as the
production containers (``demat worker GROUP``), so what is tested is what runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bus.dev.embedded import free_ports, pid_alive, stop_process
from bus.plugins import load_plugins
from bus.services import KERNEL_GROUPS
from bus.settings import get_settings
from connectors.private import PRIVATE_UMASK, open_private_append, private_dir, write_private


def service_groups() -> tuple[str, ...]:
    """The service groups of this bus: the kernel's, then the flow families'."""
    registry = load_plugins(get_settings().plugin_modules)
    return (*KERNEL_GROUPS, *registry.groups)


def default_processes() -> tuple[str, ...]:
    """One process per service group, plus the partner simulators."""
    return (*service_groups(), "simulators")


@dataclass
class Services:
    """Start, watch and stop the worker processes of one var directory."""

    var_dir: Path
    groups: tuple[str, ...] = field(default_factory=default_processes)
    env: dict[str, str] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    restarts: int = 0

    @property
    def run_file(self) -> Path:
        return self.var_dir / "services.json"

    def running(self) -> bool:
        """True when every group recorded in ``services.json`` is alive."""
        try:
            pids = json.loads(self.run_file.read_text())
        except (OSError, ValueError):
            return False
        return all(pid_alive(pids.get(g)) for g in self.groups)

    def adopt(self) -> bool:
        """Take over the processes ``services.json`` records; True if any is alive."""
        try:
            recorded = json.loads(self.run_file.read_text())
        except (OSError, ValueError):
            return False
        if not any(pid_alive(recorded.get(g)) for g in self.groups):
            return False
        self.pids = {g: recorded.get(g, 0) for g in self.groups}
        return True

    def start(self, timeout: float = 60.0) -> None:
        """Spawn every group; return once the simulators have published their addresses."""
        private_dir(self.var_dir / "log")
        since = time.time()
        for group in self.groups:
            self.pids[group] = self._spawn(group)
        self._save()
        if "simulators" in self.groups:
            sims = self.var_dir / "simulators.json"
            if not wait_until(lambda: sims.exists() and sims.stat().st_mtime >= since, timeout):
                raise RuntimeError(f"the partner simulators did not start within {timeout:g} s: "
                                   f"see {self.var_dir / 'log' / 'simulators.log'}")

    def _spawn(self, group: str) -> int:
        log = open_private_append(self.var_dir / "log" / f"{group}.log")
        env = os.environ | {"DEMAT_VAR_DIR": str(self.var_dir.resolve())} | self.env
        proc = subprocess.Popen(
            [sys.executable, "-m", "bus.cli", *_command(group)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True, umask=PRIVATE_UMASK)
        log.close()
        return proc.pid

    def stop_group(self, group: str, grace: float = 10.0) -> None:
        """Stop one group's process (SIGTERM, then SIGKILL after ``grace``)."""
        pid = self.pids.pop(group, None)
        stop_process(pid, grace=grace)
        if pid:
            _reap(pid)
        self._save()

    def start_group(self, group: str) -> None:
        self.pids[group] = self._spawn(group)
        self._save()

    def supervise(self) -> list[str]:
        """Restart any group whose process died; return the restarted groups."""
        restarted = [g for g, pid in self.pids.items() if not pid_alive(pid)]
        for group in restarted:
            if self.pids[group]:
                _reap(self.pids[group])
            self.pids[group] = self._spawn(group)
            self.restarts += 1
        if restarted:
            self._save()
        return restarted

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM every process at once, then wait (SIGKILL after ``grace``)."""
        for pid in self.pids.values():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        for pid in self.pids.values():
            stop_process(pid, grace=grace)
            _reap(pid)
        self.pids.clear()
        if self.run_file.exists():
            self.run_file.unlink()

    def _save(self) -> None:
        write_private(self.run_file, json.dumps(self.pids))


def _command(group: str) -> list[str]:
    """The ``demat`` command of a process: the simulators, the HTTP API, or a worker group."""
    if group in ("simulators", "api"):
        return ["simulators"] if group == "simulators" else ["serve"]
    return ["worker", group]


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_until(predicate, timeout: float, interval: float = 0.2) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


@dataclass(frozen=True)
class ServedApi:
    """A ``demat serve`` process started by ``served_api``."""

    url: str
    pid: int


@contextlib.contextmanager
def served_api(env: dict[str, str], log_file: Path, *, cwd: Path | None = None,
               timeout: float = 60, port: int | None = None) -> Iterator[ServedApi]:
    """``demat serve`` on ``port`` (else a free one) with ``env`` added, ready
    (``/readyz``), then stopped."""
    import httpx  # lazy: only the tests and the bench serve the API this way

    port = port or free_ports(1)[0]
    url = f"http://127.0.0.1:{port}"
    with open_private_append(log_file) as out:
        proc = subprocess.Popen([sys.executable, "-m", "bus.cli", "serve", "--port", str(port)],
                                env=os.environ | env, cwd=cwd, stdout=out,
                                stderr=subprocess.STDOUT, umask=PRIVATE_UMASK)

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        if not wait_until(ready, timeout):
            raise RuntimeError(f"demat serve did not start: see {log_file}")
        yield ServedApi(url, proc.pid)
    finally:
        proc.terminate()
        proc.wait(15)

"""Shared machinery of the partner simulators: a loopback HTTP server, failure
injection and per-key submission counting.

Every simulator is a real HTTP server (an ASGI app served by uvicorn in a
background thread) so connectors are exercised over their real protocol.
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class FailurePlan:
    """How often a simulator misbehaves: HTTP 5xx and hanging (timeout) answers."""

    error_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 30.0
    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def draw(self) -> str | None:
        """``"error"``, ``"timeout"`` or ``None``, at the plan's rates."""
        value = self._rng.random()
        if value < self.error_rate:
            return "error"
        if value < self.error_rate + self.timeout_rate:
            return "timeout"
        return None

    async def apply(self) -> None:
        """Raise a 503 or sleep past the client's timeout, as the plan draws."""
        outcome = self.draw()
        if outcome == "error":
            raise HTTPException(status_code=503, detail="injected failure")
        if outcome == "timeout":
            await asyncio.sleep(self.timeout_seconds)


def add_failure_control(app: FastAPI, sim: Any) -> None:
    """``POST /_sim/failures``: the posted JSON becomes ``sim.failures`` (a FailurePlan)."""

    @app.post("/_sim/failures")
    async def set_failures(plan: dict) -> dict:
        sim.failures = FailurePlan(**plan)
        return plan


class SubmissionCounter:
    """Thread-safe count of submissions per idempotency key (proves single effects)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, key: str) -> int:
        with self._lock:
            self._counts[key] += 1
            return self._counts[key]

    def count(self, key: str) -> int:
        with self._lock:
            return self._counts[key]

    def duplicates(self) -> dict[str, int]:
        """Keys submitted more than once, with their counts."""
        with self._lock:
            return {k: n for k, n in self._counts.items() if n > 1}

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class SimulatorServer:
    """Serve an ASGI app on loopback from a daemon thread."""

    def __init__(self, app: object, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port or free_port(host)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> str:
        """Start serving and return the base URL once the socket accepts connections."""
        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"simulator on {self.base_url} did not start")
            time.sleep(0.02)
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SimulatorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class HttpSimulator:
    """Base of the partner simulators: the app every one of them serves starts with the
    control endpoints (``GET /_sim/counts``, ``POST /_sim/failures``), and is served on
    loopback by ``serve`` (a server to stop) or ``start``/``stop`` (kept here)."""

    title = "partner simulator"

    def __init__(self, failures: FailurePlan | None = None) -> None:
        self.failures = failures or FailurePlan()
        self._server: SimulatorServer | None = None
        self._base_url = ""  # set when served

    def counts(self) -> dict[str, Any]:
        """What ``GET /_sim/counts`` answers: the simulator's effects per key."""
        return {}

    def new_app(self, *, failure_control: bool = True) -> FastAPI:
        """The simulator's app, with its control endpoints already in place."""
        app = FastAPI(title=self.title)

        @app.get("/_sim/counts")
        async def counts() -> dict[str, Any]:
            return self.counts()

        if failure_control:
            add_failure_control(app, self)
        return app

    def serve(self, port: int = 0) -> SimulatorServer:
        """Serve ``self.app`` on loopback; the caller stops the server."""
        server = SimulatorServer(self.app, port=port)
        self._base_url = server.start()
        return server

    def start(self, port: int = 0) -> str:
        """Serve on loopback (stopped by ``stop``); return the base URL."""
        self._server = self.serve(port)
        return self._server.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    @property
    def base_url(self) -> str:
        """Where the simulator is served (empty until it is)."""
        return self._base_url

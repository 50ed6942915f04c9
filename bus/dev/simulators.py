"""The partner simulators of the embedded bus, served from one process.

Addresses go to ``<var>/simulators.json``; tenant connectors name them as
``sim:NAME``. Failure injection comes from ``DEMAT_SIM_*`` variables or, at run
time, from each simulator's ``POST /_sim/failures``.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bus.dev.embedded import port_is_free
from bus.settings import get_settings
from connectors.chorus.simulator import ChorusSimulator
from connectors.ensap.simulator import EnsapSimulator
from connectors.iparapheur.simulator import IparapheurSimulator
from connectors.private import write_private
from connectors.sae.simulator import simulator_app
from connectors.securemail.simulator import SecureMailSimulator
from connectors.simulator import FailurePlan, SimulatorServer
from connectors.tsa.simulator import TsaSimulator
from connectors.webdav.simulator import WebdavSimulator
from workers.actes.simulator import simulator_for_tenants


def _webdav(plan: FailurePlan) -> Any:
    return WebdavSimulator(plan).app


def _iparapheur(plan: FailurePlan) -> Any:
    pace = float(os.environ.get("DEMAT_SIM_IPARAPHEUR_STEP_SECONDS", "0.5"))
    return IparapheurSimulator(plan, step_seconds=pace,
                               key_dir=get_settings().var_dir / "iparapheur-sim").app


def _ensap(plan: FailurePlan) -> Any:
    return EnsapSimulator(plan).app


def _securemail(plan: FailurePlan) -> Any:
    """Portal app; its SMTP relay starts here and is announced as ``securemail-smtp``."""
    read_after = os.environ.get("DEMAT_SIM_MAIL_READ_AFTER", "1")  # demo agent clicks the link
    sim = SecureMailSimulator(plan, auto_read_after=float(read_after) if read_after else None)
    try:
        old = json.loads((get_settings().var_dir / "simulators.json").read_text())
        port = int(old["securemail-smtp"].rsplit(":", 1)[1])
    except (OSError, ValueError, KeyError):
        port = 0
    sim.app.state.side_addresses = {
        "securemail-smtp": sim.start_smtp(port if port and port_is_free(port) else 0)}
    return sim.app


def _tsa(plan: FailurePlan) -> Any:
    return TsaSimulator(get_settings().var_dir / "tsa", plan).app


def _s2low(plan: FailurePlan) -> Any:
    return simulator_for_tenants(plan).app


def _sae(plan: FailurePlan) -> Any:
    delay = float(os.environ.get("DEMAT_SIM_SAE_ATR_DELAY", "0.5"))
    return simulator_app(plan, atr_delay=delay)


def _chorus(plan: FailurePlan) -> Any:
    delay = float(os.environ.get("DEMAT_SIM_CHORUS_STEP_DELAY", "0.3"))
    # no seeded received invoices: they name a buyer that is none of the tenants (the real
    # platform delivers an invoice to its buyer only); the demo sends its own
    return ChorusSimulator(step_delay=delay, failures=plan, seed_received=0).app


SIMULATORS: dict[str, Callable[[FailurePlan], Any]] = {
    "tsa": _tsa,
    "webdav": _webdav,
    "sae": _sae,
    "s2low": _s2low,
    "chorus": _chorus,
    "ensap": _ensap,
    "securemail": _securemail,
    "iparapheur": _iparapheur,
}


def failure_plan_from_env() -> FailurePlan:
    return FailurePlan(
        error_rate=float(os.environ.get("DEMAT_SIM_ERROR_RATE", "0")),
        timeout_rate=float(os.environ.get("DEMAT_SIM_TIMEOUT_RATE", "0")),
        timeout_seconds=float(os.environ.get("DEMAT_SIM_TIMEOUT_SECONDS", "15")))


def serve_all(var_dir: Path) -> None:
    """Start every simulator, record their addresses, and serve until SIGTERM/SIGINT."""
    path = var_dir / "simulators.json"
    try:
        previous = {k: int(v.rsplit(":", 1)[1]) for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError):
        previous = {}
    servers: dict[str, SimulatorServer] = {}
    for name, build in SIMULATORS.items():
        port = previous.get(name, 0)
        server = SimulatorServer(build(failure_plan_from_env()),
                                 port=port if port and port_is_free(port) else 0)
        server.start()
        servers[name] = server
    addresses = {n: s.base_url for n, s in servers.items()}
    for server in servers.values():  # side servers of a simulator (e.g. an SMTP relay)
        addresses |= getattr(getattr(server.app, "state", None), "side_addresses", {})
    write_private(path, json.dumps(addresses, indent=2))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for server in servers.values():
        server.stop()

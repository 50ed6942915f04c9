"""The bus's long-running services, one module per service group:

- ``intake``: checks submissions, enforces idempotency keys, hands verdicts to the router,
  prunes the producers' receipts of routed documents;
- ``router``: the only writer of document state; drives each document through its flow;
- ``steps``: one consumer running the step kinds of the flows the tenants use;
- ``journal``: indexes journal events and dead letters for status, history and search;
- ``delays``: forwards delayed messages (retry back-off, partner polls) when due;
- ``sealer``: seals the journal into segments and signed, time-stamped checkpoints;
- ``webhooks``: pushes journal events to the tenants' webhook subscriptions.

Flow families add groups of their own (``bus.plugins.Registry.group``), such as the
archive's ``batcher``. ``build_app`` assembles the groups asked for into one process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from faststream import FastStream
from faststream.kafka import KafkaBroker

from bus.broker import ensure_topics, make_broker
from bus.health import Heartbeat
from bus.runtime import Runtime
from bus.services.background import run_beside
from bus.services.delays import DelayService
from bus.services.intake import ReceiptPruner, register_intake
from bus.services.journal import register_journal
from bus.services.router import register_router
from bus.services.sealer import register_configuration_digest, register_sealer
from bus.services.steps import StepService
from bus.services.webhooks import WebhookService

Registrar = Callable[[FastStream, KafkaBroker, Runtime], object]


def _steps(app: FastStream, broker: KafkaBroker, runtime: Runtime,
           kinds: list[str] | None = None) -> None:
    served = kinds or runtime.used_step_kinds() or runtime.registry.step_kinds()
    run_beside(app, StepService(broker, runtime, served))


def _intake(app: FastStream, broker: KafkaBroker, runtime: Runtime) -> None:
    register_intake(broker, runtime)
    run_beside(app, ReceiptPruner(runtime.receipts))


def _router(app: FastStream, broker: KafkaBroker, runtime: Runtime) -> None:
    register_router(broker, runtime)
    register_configuration_digest(app, broker, runtime)


def _delays(app: FastStream, broker: KafkaBroker, runtime: Runtime) -> None:
    run_beside(app, DelayService(runtime.settings))


def _webhooks(app: FastStream, broker: KafkaBroker, runtime: Runtime) -> None:
    run_beside(app, WebhookService(broker, runtime))


KERNEL_GROUPS: dict[str, Registrar] = {
    "intake": _intake,
    "router": _router,
    "steps": _steps,
    "journal": lambda app, broker, runtime: register_journal(broker, runtime),
    "delays": _delays,
    "sealer": register_sealer,
    "webhooks": _webhooks,
}


def service_groups(runtime: Runtime) -> dict[str, Registrar]:
    """Every service group this bus can run: the kernel's, then the flow families'."""
    return KERNEL_GROUPS | runtime.registry.groups


def build_app(runtime: Runtime, groups: list[str], step_kinds: list[str] | None = None
              ) -> FastStream:
    """A FastStream app running the given service groups in one process (group
    ``steps``: only ``step_kinds`` when given)."""
    runtime.check()
    known = service_groups(runtime)
    if step_kinds:
        unknown_kinds = sorted(set(step_kinds) - set(runtime.registry.step_kinds()))
        if unknown_kinds:
            raise ValueError(f"unknown step kind(s) {unknown_kinds}")
        known["steps"] = partial(_steps, kinds=step_kinds)
    unknown = [g for g in groups if g not in known]
    if unknown:
        raise ValueError(f"unknown service group(s) {unknown} (known: {', '.join(known)})")
    broker = make_broker(runtime.settings, client_id="demat-" + "-".join(groups))
    app = FastStream(broker)
    for group in groups:
        known[group](app, broker, runtime)
    run_beside(app, Heartbeat(runtime.settings, groups, lambda: [
        c for s in broker.subscribers if (c := getattr(s, "consumer", None)) is not None]))

    @app.on_startup
    async def _prepare() -> None:
        # blocking S3 calls run in threads: as many as the object store has connections
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(runtime.settings.io_threads, thread_name_prefix="demat-io"))
        await ensure_topics(runtime.settings, runtime.topics.all(runtime.registry.step_kinds()))

    return app

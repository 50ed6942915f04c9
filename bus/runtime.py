"""What every bus process loads once: settings, plug-ins, tenants, flows, store,
database, document states, idempotency keys, topics, and the partner connectors it has built."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from aiokafka import AIOKafkaProducer

from bus.broker import start_producer
from bus.crypto import Keyring
from bus.database import Database
from bus.flows import FLOWS_DIR, FlowRegistry
from bus.idempotency import IdempotencyKeys
from bus.objectstore import ObjectStore
from bus.plugins import Registry, load_plugins
from bus.privacy import install_metadata_sealer
from bus.receipts import Receipts
from bus.settings import Settings, get_settings
from bus.state import StateStore
from bus.tenants import TenantRegistry
from bus.topics import Topics
from connectors.registry import build_connector


@dataclass
class Runtime:
    """Loaded configuration and shared clients of one process (it owns them)."""

    settings: Settings = field(default_factory=get_settings)
    _connectors: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)
    _producers: dict[int, AIOKafkaProducer] = field(default_factory=dict, repr=False)
    _producer_locks: dict[int, asyncio.Lock] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # envelopes this process writes seal their personal metadata with the tenants' keys
        install_metadata_sealer(Keyring(self.settings.var_dir, self.settings.kek_file),
                                lambda: self.flows)

    @cached_property
    def registry(self) -> Registry:
        """The flow families' registrations (every plug-in imported once)."""
        return load_plugins(self.settings.plugin_modules)

    @cached_property
    def tenants(self) -> TenantRegistry:
        return TenantRegistry.load(self.settings.tenants_path)

    @cached_property
    def flows(self) -> FlowRegistry:
        extra = [self.settings.extra_flows_dir] if self.settings.extra_flows_dir else []
        return FlowRegistry.load(FLOWS_DIR, *self.registry.flow_dirs, *extra)

    @cached_property
    def store(self) -> ObjectStore:
        store = ObjectStore(self.settings)
        store.ensure_bucket()
        return store

    @cached_property
    def database(self) -> Database:
        """The bus's PostgreSQL database (document states; the index has its own)."""
        return Database(self.settings.database)

    @cached_property
    def states(self) -> StateStore:
        """Documents' states, read as they are stored (no cache: only the router, which
        writes them, may cache them)."""
        return StateStore(self.database, self.store, cache_size=0)

    @cached_property
    def receipts(self) -> Receipts:
        """The door's receipts, on connections whose commits do not wait for the disk."""
        return Receipts(Database(self.settings.database, durable=False))

    @cached_property
    def keys(self) -> IdempotencyKeys:
        """Producers' idempotency keys (in the database)."""
        return IdempotencyKeys(self.database)

    @cached_property
    def topics(self) -> Topics:
        return Topics(self.settings.topic_prefix)

    def used_step_kinds(self) -> list[str]:
        """The step kinds of the flows some tenant uses: what a steps process serves by
        default (the others' topics are not polled; tenants are read at start)."""
        used = {step.kind for name in self.flows.names()
                if any(tenant.uses(name) for tenant in self.tenants)
                for step in self.flows.get(name).steps}
        return [kind for kind in self.registry.step_kinds() if kind in used]

    def connector(self, tenant: str, role: str) -> Any:
        """The connector serving ``role`` for ``tenant`` (built once by this runtime)."""
        key = (tenant, role)
        if key not in self._connectors:
            cfg = self.tenants.get(tenant).connectors[role]
            self._connectors[key] = build_connector(cfg.type, cfg.options,
                                                    self.settings.var_dir)
        return self._connectors[key]

    async def producer(self) -> AIOKafkaProducer:
        """This runtime's plain producer on the running event loop (started once, kept)."""
        loop = id(asyncio.get_running_loop())
        async with self._producer_locks.setdefault(loop, asyncio.Lock()):  # locks are per loop
            if loop not in self._producers:
                self._producers[loop] = await start_producer(self.settings)
        return self._producers[loop]

    def forget_connectors(self) -> None:
        """Drop the connectors built so far (their clients belong to one event loop)."""
        self._connectors.clear()

    def check(self) -> None:
        """Start-up check of flows against step kinds and tenants (raises naming the fault)."""
        self.flows.check(self.tenants, set(self.registry.step_kinds()))

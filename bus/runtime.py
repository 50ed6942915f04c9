"""What every bus process loads once: settings, tenants, flows, store, topics."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from bus.flows import FlowRegistry
from bus.objectstore import ObjectStore
from bus.settings import Settings, get_settings
from bus.tenants import TenantRegistry
from bus.topics import Topics


@dataclass
class Runtime:
    """Loaded configuration and shared clients of one process."""

    settings: Settings = field(default_factory=get_settings)

    @cached_property
    def tenants(self) -> TenantRegistry:
        return TenantRegistry.load(self.settings.tenants_path)

    @cached_property
    def flows(self) -> FlowRegistry:
        from bus.flows import FLOWS_DIR

        extra = [self.settings.extra_flows_dir] if self.settings.extra_flows_dir else []
        return FlowRegistry.load(FLOWS_DIR, *extra)

    @cached_property
    def store(self) -> ObjectStore:
        store = ObjectStore(self.settings)
        store.ensure_bucket()
        return store

    @cached_property
    def topics(self) -> Topics:
        return Topics(self.settings.topic_prefix)

    def check(self) -> None:
        """Start-up check of flows against step kinds and tenants (raises naming the fault)."""
        from workers import STEP_KINDS

        self.flows.check(self.tenants, set(STEP_KINDS))

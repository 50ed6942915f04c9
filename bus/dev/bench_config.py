"""The benchmark's own configuration: its sizes (``BenchPlan``), flows and tenant."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bus.plugins import load_plugins
from connectors.registry import connector_types

TENANT = "216900910"
TERMINAL = {"completed", "error", "rejected", "duplicate"}
Log = Callable[[str], None]


@dataclass
class BenchPlan:
    """Sizes of one benchmark run (``quick`` is the two-minute version)."""

    burst_documents: int = 13_000
    transport_documents: int = 1_000
    transport_rounds: int = 3  # bus and raw chain interleaved; the medians are reported
    noop_steps: int = 3
    latency_samples: int = 40
    large_file_mb: int = 1024
    submit_concurrency: int = 32
    api_clients: int = 200  # concurrent HTTP clients of the API phase
    api_documents: int = 3_000  # paced at api_rate
    api_rate: float = 100.0  # submissions a second the clients offer together (0: saturate)
    api_saturation_documents: int = 2_000  # then as fast as they are accepted
    api_workers: int = 1  # demat serve --workers
    mode: str = "full"
    burst_flow: str = "bench-payslip"  # or "payslip": the real flow (bus.dev.bench_payroll)
    broker: str = "memory"  # Tansu's log storage: memory (like Kafka's page cache) or s3
    only: str | None = None  # one phase alone ("api", "burst", "console"), on the same stack

    @classmethod
    def quick(cls) -> BenchPlan:
        return cls(burst_documents=1_000, transport_documents=300, latency_samples=15,
                   large_file_mb=128, api_documents=1_000,
                   api_saturation_documents=400, mode="quick")


# --- the benchmark's own configuration ---------------------------------------------


def seal_available() -> bool:
    """True when a local seal step exists to put in the burst flow."""
    return "sign" in load_plugins().steps and "seal" in connector_types()


def bench_flows(noop_steps: int, seal: bool) -> dict[str, dict[str, Any]]:
    """Flow definitions used by the benchmark (written to its own flows folder)."""
    noop = [{"name": f"noop{i}", "kind": "noop"} for i in range(1, noop_steps + 1)]
    burst = [{"name": "validate", "kind": "validate"}]
    if seal:
        burst.append({"name": "seal", "kind": "sign", "connector": "signature"})
    burst.append({"name": "deposit", "kind": "deposit", "connector": "ged",
                  "retry": {"max_attempts": 12, "backoff_seconds": 1.0}})
    large = [{"name": "validate", "kind": "validate",
              "retry": {"timeout_seconds": 900}},
             {"name": "deposit", "kind": "deposit", "connector": "ged",
              "retry": {"timeout_seconds": 900}}]
    return {
        "bench-noop": {"name": "bench-noop", "metadata_model": "document", "steps": noop},
        "bench-payslip": {"name": "bench-payslip", "metadata_model": "document",
                          "encrypt_files": True, "steps": burst},  # as pay slips are
        "bench-large": {"name": "bench-large", "metadata_model": "document", "steps": large},
    }


def write_config(var_dir: Path, plan: BenchPlan) -> dict[str, str]:
    """Tenants and flows of the benchmark; returns the environment pointing at them."""
    flows_dir = var_dir / "flows"
    flows_dir.mkdir(parents=True, exist_ok=True)
    flows = bench_flows(plan.noop_steps, seal_available())
    for name, flow in flows.items():
        (flows_dir / f"{name}.yaml").write_text(yaml.safe_dump(flow, sort_keys=False))
    connectors: dict[str, Any] = {"ged": {"type": "folder", "options": {"path": "ged"}}}
    if seal_available():
        connectors["signature"] = {"type": "seal", "options": {}}
    tenant: dict[str, Any] = {"siren": TENANT, "name": "Bench city", "flows": sorted(flows),
                              "connectors": connectors}
    if plan.burst_flow == "payslip":  # the demo tenant, with its simulators, plus the above
        demo = demo_tenant(TENANT)  # it uses every flow (no "flows" list)
        tenant = demo | {"connectors": demo["connectors"] | connectors}
        # SIPs as the pay slip flow sizes them (the demo keeps them small to be quick)
        tenant["settings"]["archive"].pop("batch", None)
    tenants = {"tenants": [tenant]}
    tenants_file = var_dir / "tenants.yaml"
    tenants_file.write_text(yaml.safe_dump(tenants, sort_keys=False))
    return {"DEMAT_TENANTS_FILE": str(tenants_file), "DEMAT_EXTRA_FLOWS_DIR": str(flows_dir),
            "DEMAT_LOG_LEVEL": "WARNING"}


def demo_tenant(siren: str) -> dict[str, Any]:
    """The demo configuration of tenant ``siren`` (its connectors reach the simulators)."""
    path = Path(__file__).resolve().with_name("tenants.yaml")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    tenant = next(t for t in raw["tenants"] if t["siren"] == siren)
    tenant.pop("parent", None)  # served alone, without the entity above it
    return tenant

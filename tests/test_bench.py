"""The benchmark's own configuration stays valid as flows and tenants evolve (no timing here)."""

from __future__ import annotations

from pathlib import Path

from bus.dev.bench import append_results, rows
from bus.dev.bench_api import schedule
from bus.dev.bench_config import BenchPlan, bench_flows, seal_available, write_config
from bus.runtime import Runtime
from bus.settings import Settings
from schemas.flow import FlowDefinition


def test_bench_flows_and_tenant_pass_the_start_up_check(tmp_path: Path) -> None:
    env = write_config(tmp_path, BenchPlan.quick())
    runtime = Runtime(Settings(var_dir=tmp_path, tenants_file=Path(env["DEMAT_TENANTS_FILE"]),
                               extra_flows_dir=Path(env["DEMAT_EXTRA_FLOWS_DIR"])))
    runtime.check()
    assert {"bench-noop", "bench-payslip", "bench-large"} <= set(runtime.flows.names())
    burst = [s.name for s in runtime.flows.get("bench-payslip").steps]
    assert burst == (["validate", "seal", "deposit"] if seal_available()
                     else ["validate", "deposit"])
    for flow in bench_flows(3, seal=True).values():
        FlowDefinition.model_validate(flow)


def test_results_file_gets_a_header_once_and_a_line_per_run(tmp_path: Path) -> None:
    report = {
        "date": "2026-12-01T10:00:00+00:00", "commit": "abc1234", "mode": "quick",
        "machine": {"cores": 2, "ram_gb": 23.5, "python": "3.11.7"},
        "transport": {"bus_docs_per_s": 50.0, "raw_docs_per_s": 100.0, "ratio": 0.5,
                      "raw_processes_docs_per_s": 80.0, "ratio_processes": 0.625,
                      "hops": 8, "rounds": 3},
        "burst": {"documents": 1000, "steps": ["validate", "deposit"], "seconds": 10.0,
                  "submit_seconds": 4.0, "docs_per_s": 99.0, "errors": 10,
                  "s3_per_doc": 5.5, "kafka_per_doc": 12.25, "cpu_ms_per_doc": 21.5,
                  "cpu_seconds_by_process": {"steps": 3.0}},
        "memory": {"peak_rss_mb": 120.0, "large_file_rss_growth_mb": 8.0,
                   "large_file_mb": 128},
        "latency": {"p50_ms": 40.0, "p95_ms": 80.0, "p99_ms": 90.0},
    }
    path = tmp_path / "results.md"
    append_results(report, path)
    append_results(report | {"commit": "def5678"}, path)
    text = path.read_text()
    assert text.count("| date |") == 1
    assert "| abc1234 |" in text and "| def5678 |" in text
    assert "| 50.0/100.0/80.0 (0.5/0.625) | 1000, 10.0, 99.0, 10 | 5.5, 12.25, 21.5 |" in text
    found = {name: value for name, value, _ in rows(report)}
    assert found["transport: ratio (one process / a process per hop)"] == "0.5 / 0.625"
    assert found["burst: S3 requests / Kafka records per doc"] == "5.5 / 12.25"


def test_payroll_burst_config_is_the_demo_tenant_with_the_bench_flows(tmp_path: Path) -> None:
    from bus.dev.bench_payroll import flow_steps

    plan = BenchPlan.quick()
    plan.burst_flow = "payslip"
    env = write_config(tmp_path, plan)
    runtime = Runtime(Settings(var_dir=tmp_path, tenants_file=Path(env["DEMAT_TENANTS_FILE"]),
                               extra_flows_dir=Path(env["DEMAT_EXTRA_FLOWS_DIR"])))
    runtime.check()
    tenant = runtime.tenants.get("216900910")
    assert tenant.uses("payslip") and tenant.uses("bench-payslip")
    assert {"ensap", "seal", "sae", "ged"} <= set(tenant.connectors)
    assert flow_steps(runtime) == ["validate", "seal", "ensap", "archive"]
    from workers.archive.mapping import tenant_settings

    limits = tenant_settings(tenant).batch  # the flow's SIP bounds, not the demo's small ones
    assert limits.max_documents is None and limits.max_wait_seconds is None


def test_api_phase_alone_reports_its_rows_only() -> None:
    paced = {"clients": 200, "documents": 1000, "workers": 1, "errors": 0,
             "offered_per_s": 100.0, "submits_per_s": 99.0, "p50_ms": 40.0, "p95_ms": 90.0,
             "p99_ms": 120.0, "api_cpu_ms_per_submit": 3.1}
    report = {"broker": "memory", "api": paced,
              "api_saturation": paced | {"offered_per_s": None, "submits_per_s": 150.0,
                                         "p50_ms": 1300.0}}
    found = rows(report)
    assert [r[0] for r in found] == ["broker log storage", "API: submit p50 / p95 / p99 ms",
                                     "API: errors", "API: most submissions accepted a second"]
    assert found[1][1].startswith("40.0 / 90.0 / 120.0 (200 clients offering 100/s")
    assert found[1][2] == "p95 < 200"
    assert found[3][1].startswith("150.0 (200 clients without pause, p50 1300.0 ms")


def test_burst_phase_alone_reports_the_burst_and_peak_memory() -> None:
    burst = {"documents": 1000, "steps": ["validate", "deposit"], "seconds": 10.0,
             "submit_seconds": 4.0, "docs_per_s": 100.0, "errors": 0, "s3_per_doc": 5.0,
             "kafka_per_doc": 12.0, "cpu_ms_per_doc": 20.0,
             "cpu_seconds_by_process": {"steps": 3.0}}
    found = {name: value for name, value, _ in rows(
        {"broker": "memory", "burst": burst, "memory": {"peak_rss_mb": 150.0}})}
    assert found["burst: docs/s"].startswith("100.0 (0 not completed")
    assert found["memory: peak RSS per process MB"] == "150.0"
    assert "transport: bus docs/s" not in found and "latency p50 / p95 / p99 ms" not in found


def test_paced_clients_take_turns_at_the_offered_rate() -> None:
    due = schedule(10.0, rate=100.0)
    assert [due(i) for i in (0, 1, 250)] == [10.0, 10.01, 12.5]
    assert schedule(10.0, rate=0)(5) is None  # saturating: each one at once


def test_a_steps_process_serves_the_kinds_of_the_flows_its_tenants_use(tmp_path: Path) -> None:
    env = write_config(tmp_path, BenchPlan.quick())  # one tenant, the bench flows only
    runtime = Runtime(Settings(var_dir=tmp_path, tenants_file=Path(env["DEMAT_TENANTS_FILE"]),
                               extra_flows_dir=Path(env["DEMAT_EXTRA_FLOWS_DIR"])))
    seal = {"sign"} if seal_available() else set()
    assert set(runtime.used_step_kinds()) == {"noop", "validate", "deposit"} | seal
    assert len(runtime.registry.step_kinds()) > len(runtime.used_step_kinds())

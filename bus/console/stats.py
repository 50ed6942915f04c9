"""The dashboard's figures, aggregated by the index's database within the person's
tenants: documents by state, throughput and latency, dead letters by error class and
partners' health (their steps' recent failures and last success)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bus.index import Index

HOURS = 24


def by_state(index: Index, tenants: list[str]) -> list[dict[str, Any]]:
    """Per tenant and flow: how many documents in each state."""
    rows = index.rows("SELECT tenant, flow, state, count(*) FROM documents "
                      "WHERE tenant = ANY(%s) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3", (tenants,))
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for tenant, flow, state, count in rows:
        entry = table.setdefault((tenant, flow), {"tenant": tenant, "flow": flow,
                                                  "states": {}, "total": 0})
        entry["states"][state] = count
        entry["total"] += count
    return list(table.values())


def throughput(index: Index, tenants: list[str], now: datetime | None = None
               ) -> list[tuple[str, int]]:
    """Documents finished (completed) per hour over the last ``HOURS`` hours, oldest first."""
    now = now or datetime.now(UTC)
    start = (now - timedelta(hours=HOURS - 1)).replace(minute=0, second=0, microsecond=0)
    rows = index.rows("SELECT date_trunc('hour', at), count(*) FROM events "
                      "WHERE type = 'completed' AND at >= %s AND tenant = ANY(%s) GROUP BY 1",
                      (start, tenants))
    counts = {hour.astimezone(UTC).replace(tzinfo=None): n for hour, n in rows}
    hours = [start.replace(tzinfo=None) + timedelta(hours=i) for i in range(HOURS)]
    return [(f"{h:%H}h", counts.get(h, 0)) for h in hours]


def latency(index: Index, tenants: list[str]) -> dict[str, dict[str, Any]]:
    """Over the last hour and day: documents completed and their submission-to-completion
    time (median and 95th percentile, seconds)."""
    found = {}
    for name, span in (("hour", "1 hour"), ("day", "1 day")):
        (count, p50, p95), = index.rows(
            "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY s), "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY s) FROM (SELECT extract(epoch FROM "
            "updated_at - created_at) AS s FROM documents WHERE state = 'completed' "
            f"AND updated_at >= now() - interval '{span}' AND tenant = ANY(%s)) x", (tenants,))
        found[name] = {"count": count, "p50": p50, "p95": p95}
    return found


def dead_letters(index: Index, tenants: list[str]) -> list[tuple[str, int]]:
    """Open dead letters per error class, most first."""
    rows = index.rows("SELECT error_class, count(*) FROM dead_letters WHERE status = 'open' "
                      "AND tenant = ANY(%s) GROUP BY 1 ORDER BY 2 DESC, 1", (tenants,))
    return [(cls, n) for cls, n in rows]


def partners(index: Index, tenants: list[str], connectors: dict[tuple[str, str], str]
             ) -> list[dict[str, Any]]:
    """Per partner (the connector of a flow's step): its steps' failures and successes
    over the last hour, and its last success."""
    rows = index.rows(
        "SELECT flow, step, count(*) FILTER (WHERE type = 'step-failed' AND at >= now() - "
        "interval '1 hour'), count(*) FILTER (WHERE type = 'step-done' AND at >= now() - "
        "interval '1 hour'), max(at) FILTER (WHERE type = 'step-done') FROM events "
        "WHERE type IN ('step-failed', 'step-done') AND tenant = ANY(%s) GROUP BY 1, 2",
        (tenants,))
    health: dict[str, dict[str, Any]] = {}
    for flow, step, failed, done, last in rows:
        partner = connectors.get((flow, step))
        if partner is None:
            continue
        entry = health.setdefault(partner, {"partner": partner, "failed": 0, "done": 0,
                                            "last_success": None})
        entry["failed"] += failed
        entry["done"] += done
        if last is not None and (entry["last_success"] is None or last > entry["last_success"]):
            entry["last_success"] = last
    for entry in health.values():
        tried = entry["failed"] + entry["done"]
        entry["error_rate"] = round(100 * entry["failed"] / tried) if tried else None
    return sorted(health.values(), key=lambda e: e["partner"])

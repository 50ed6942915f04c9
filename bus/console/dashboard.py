"""The console's home page: the person's tenants at a glance, live (the page's script
follows the API's event stream and reloads the figures)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bus.api.auth import bus_of, permission
from bus.console import stats
from bus.console.i18n import translator
from bus.console.svg import bar_chart
from bus.console.web import PREFIX, STATE_NAMES, ConsoleRoute, Signed, render

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


def _figures(index: Any, tenants: list[str], connectors: dict[tuple[str, str], str]
             ) -> dict[str, Any]:
    return {"by_state": stats.by_state(index, tenants),
            "throughput": stats.throughput(index, tenants),
            "latency": stats.latency(index, tenants),
            "dead_letters": stats.dead_letters(index, tenants),
            "partners": stats.partners(index, tenants, connectors)}


@router.get("/", openapi_extra=permission("read"))
async def dashboard(request: Request, me: Signed) -> Response:
    bus = bus_of(request)
    runtime = bus.client.runtime
    tenants = sorted(me.who.tenants_with("read", runtime.tenants))
    flows = runtime.flows
    connectors = {(name, s.name): s.connector for name in flows.names()
                  for s in flows.get(name).steps if s.connector}
    figures = await asyncio.to_thread(_figures, bus.index, tenants, connectors)
    t = translator(me.lang)
    totals = {s: sum(r["states"].get(s, 0) for r in figures["by_state"]) for s in STATE_NAMES}
    charts = {
        "throughput": bar_chart(t("dash.throughput_chart"), figures["throughput"]),
        "states": bar_chart(t("dash.states_chart"),
                            [(t(f"state.{s}"), n) for s, n in totals.items() if n],
                            color="#18753c"),
        "dead_letters": bar_chart(t("dash.dlq_chart"), figures["dead_letters"][:10],
                                  color="#ce0500")}
    return render(request, "dashboard.html", me, tenants=tenants, states=STATE_NAMES,
                  charts=charts, **figures)

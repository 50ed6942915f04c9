"""The administrators' page: the users holding roles on the tenants the person
administers, their tokens, and those tenants' webhook subscriptions with their latest
deliveries."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from bus.api import push
from bus.api.auth import bus_of, permission
from bus.console.web import PREFIX, ConsoleRoute, Signed, render
from bus.webhooks.delivery import delivered

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
DELIVERIES_SHOWN = 10


def _people(identities: Any, scope: set[str]) -> tuple[list[dict], list[dict]]:
    """Users with a role on a tenant of ``scope`` (their roles there only), and their
    tokens (never a secret nor its digest)."""
    users = []
    for user in identities.users():
        roles = {t: r for t, r in user["roles"].items() if t in scope}
        if roles:
            users.append({"login": user["login"], "roles": roles})
    logins = {u["login"] for u in users}
    tokens = [t for t in identities.tokens() if t["login"] in logins]
    return users, tokens


@router.get("/admin", openapi_extra=permission("users"))
async def admin_page(request: Request, me: Signed) -> Response:
    bus = bus_of(request)
    runtime = bus.client.runtime
    scope = me.who.tenants_with("users", runtime.tenants)
    if not scope:
        raise HTTPException(403, {"message": "your roles administer no tenant",
                                  "field": "Authorization"})
    users, tokens = await asyncio.to_thread(_people, bus.identities, scope)
    hooks = (await push.list_webhooks(request, me.who))["webhooks"] \
        if me.who.tenants_with("webhooks", runtime.tenants) else []
    for hook in hooks:
        got = await asyncio.to_thread(delivered, runtime.store, hook["id"])
        hook["deliveries"] = sorted(got, key=lambda d: str(d.get("at", "")),
                                    reverse=True)[:DELIVERIES_SHOWN]
    return render(request, "admin.html", me, users=users, tokens=tokens, webhooks=hooks)

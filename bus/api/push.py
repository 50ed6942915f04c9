"""``/v1/webhooks`` (a tenant's subscriptions, for its admins) and ``/v1/events`` (a
tenant's events as a Server-Sent Events stream, for its readers)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from bus.api.auth import bus_of, forbidden, permission
from bus.api.documents import Who
from bus.webhooks.events import check_patterns
from bus.webhooks.stream import parse_cursor, tenant_stream
from bus.webhooks.subscriptions import Shape, SubscriptionStore

router = APIRouter(tags=["push"])


class NewSubscription(BaseModel):
    tenant: str
    url: str = Field(min_length=8, max_length=2000)
    events: list[str] = Field(min_length=1, max_length=50)
    flows: list[str] = Field(default_factory=list, max_length=50)  # [] = every flow
    shape: Shape = "native"  # "pastell": what a Pastell client polls for


def _subscriptions(request: Request) -> SubscriptionStore:
    return SubscriptionStore(bus_of(request).client.runtime.store)


@router.get("/v1/webhooks", summary="the webhook subscriptions of the caller's tenants",
            openapi_extra=permission("webhooks"))
async def list_webhooks(request: Request, who: Who, tenant: str | None = None
                        ) -> dict[str, Any]:
    tenants = bus_of(request).client.runtime.tenants
    scope = who.tenants_with("webhooks", tenants)
    if tenant is not None and tenant not in scope:
        raise forbidden("managing webhooks", tenant)
    found = await asyncio.to_thread(_subscriptions(request).list, tenant)
    return {"webhooks": [s.model_dump(mode="json") for s in found if s.tenant in scope]}


@router.post("/v1/webhooks", status_code=201, summary="subscribe a URL to a tenant's events "
             "(the secret is shown once)", openapi_extra=permission("webhooks"))
async def add_webhook(request: Request, who: Who, body: NewSubscription) -> JSONResponse:
    runtime = bus_of(request).client.runtime
    if not who.may("webhooks", body.tenant, runtime.tenants):
        raise forbidden("managing webhooks", body.tenant)
    unknown = [f for f in body.flows if f not in runtime.flows.names()]
    if unknown:
        raise HTTPException(422, {"message": f"{', '.join(unknown)}: not a flow of this bus",
                                  "field": "flows"})
    try:
        sub = await asyncio.to_thread(_subscriptions(request).add, body.tenant, body.url,
                                      body.events, body.flows, body.shape)
    except ValueError as exc:
        raise HTTPException(422, {"message": str(exc), "field": "url"}) from None
    return JSONResponse(sub.model_dump(mode="json") | {"secret": sub.secret}, status_code=201,
                        headers={"Location": f"/v1/webhooks/{sub.id}"})


@router.delete("/v1/webhooks/{sub_id}", summary="remove a subscription",
               openapi_extra=permission("webhooks"))
async def remove_webhook(request: Request, who: Who, sub_id: str) -> dict[str, Any]:
    subs = _subscriptions(request)
    sub = await asyncio.to_thread(subs.get, sub_id) if len(sub_id) <= 100 else None
    tenants = bus_of(request).client.runtime.tenants
    if sub is None or not who.may("webhooks", sub.tenant, tenants):
        raise HTTPException(404, {"message": "no such subscription", "field": "sub_id"})
    removed = await asyncio.to_thread(subs.remove, sub_id)
    return removed.model_dump(mode="json")


@router.get("/v1/events", summary="a tenant's events as Server-Sent Events",
            openapi_extra=permission("read"), response_class=StreamingResponse)
async def events(request: Request, who: Who, tenant: str,
                 types: Annotated[list[str], Query()] = ["*"],  # noqa: B006 (FastAPI's way)
                 last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None
                 ) -> StreamingResponse:
    """From now on (or right after ``Last-Event-ID``); each frame's ``data`` is the
    webhook payload (deduplicate on its ``id``)."""
    if not who.may("read", tenant, bus_of(request).client.runtime.tenants):
        raise forbidden("reading the events of", tenant)
    try:
        check_patterns(types)
        if last_event_id:
            parse_cursor(last_event_id)
    except ValueError as exc:
        raise HTTPException(422, {"message": str(exc), "field": "types"}) from None
    settings = bus_of(request).client.runtime.settings
    return StreamingResponse(tenant_stream(settings, tenant, types, since=last_event_id),
                             media_type="text/event-stream",
                             headers={"X-Accel-Buffering": "no"})

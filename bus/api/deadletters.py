"""``/v1/dead-letters``: list, show, replay and discard dead letters within the caller's
tenants, through the operators' desk (``bus.operator``), each action journaled with the
caller's identity.

A letter is visible to the readers of its tenant; one with no tenant (an undecodable
message, whose raw bytes may be any tenant's) only to whoever holds the permission on
every configured tenant. An invisible letter answers 404, as if it did not exist.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bus.api.auth import bus_of, forbidden, permission
from bus.api.documents import Who
from bus.identity import Identity
from bus.operator import FILTERS, may_act
from schemas.text import MultiLine

router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"])
MAX_LETTERS = 500  # per replay or discard request
STATUSES = ("open", "replayed", "discarded", "all")
LetterId = Annotated[str, Field(min_length=1, max_length=200)]


def _since(value: str | None, field: str = "since") -> str | None:
    if value is not None:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise HTTPException(422, {"message": f"expected an ISO date or datetime, got "
                                      f"{value!r}", "field": field}) from None
    return value


class Filters(BaseModel):
    """Which open letters: every one matching all the filters given."""

    model_config = ConfigDict(extra="forbid")
    tenant: str | None = Field(None, max_length=20)
    flow: str | None = Field(None, max_length=200)
    step: str | None = Field(None, max_length=200)
    error: str | None = Field(None, max_length=200, description="error class")
    since: str | None = Field(None, max_length=40, description="ISO date or datetime")


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[LetterId] | None = Field(None, min_length=1, max_length=MAX_LETTERS)
    filters: Filters | None = None
    dry_run: bool = False
    from_step: str | None = Field(None, min_length=1, max_length=200)
    rate: float = Field(10.0, gt=0, le=1000, description="replays per second")


class DiscardRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[LetterId] = Field(min_length=1, max_length=MAX_LETTERS)
    reason: MultiLine = Field(min_length=1, max_length=2000)

    @field_validator("reason")
    @classmethod
    def _said(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a reason is required")
        return value.strip()


def _scope(who: Identity, need: str, tenants: Any) -> list[str | None]:
    """Tenants whose letters ``who`` may ``need``; ``None`` too if it holds it on all."""
    scope: list[str | None] = sorted(who.tenants_with(need, tenants))
    return [*scope, None] if len(scope) == len(list(tenants)) else scope


@router.get("", summary="dead letters of the caller's tenants", openapi_extra=permission("read"))
async def list_letters(request: Request, who: Who, tenant: str | None = None,
                       flow: str | None = None, step: str | None = None,
                       error: str | None = None, since: str | None = None,
                       status: str = "open",
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """Newest first; ``status``: open (default), replayed, discarded or all."""
    bus = bus_of(request)
    tenants = bus.client.runtime.tenants
    if status not in STATUSES:
        raise HTTPException(422, {"message": f"expected one of {', '.join(STATUSES)}",
                                  "field": "status"})
    if tenant is not None and not who.may("read", tenant, tenants):
        raise forbidden("reading", tenant)
    rows = await asyncio.to_thread(
        bus.index.dead_letters, tenant=tenant, flow=flow, step=step, error=error,
        since=_since(since), status=None if status == "all" else status, limit=limit,
        within=_scope(who, "read", tenants))
    return {"dead_letters": rows}


def _invisible(field: str) -> HTTPException:
    """404 that does not echo the id asked for (``field`` says which one)."""
    return HTTPException(404, {"message": "no such dead letter", "field": field})


@router.get("/{dlq_id}", summary="one dead letter with its full context",
            openapi_extra=permission("read"))
async def show(request: Request, who: Who, dlq_id: str) -> dict[str, Any]:
    bus = bus_of(request)
    letter = await asyncio.to_thread(bus.index.dead_letter, dlq_id) if len(dlq_id) <= 200 \
        else None
    if letter is None or not may_act(who, letter, "read", bus.client.runtime.tenants):
        raise _invisible("dlq_id")
    return letter


async def _named(request: Request, who: Identity, ids: list[str], need: str
                 ) -> list[dict[str, Any]]:
    """The open letters ``ids``: 404 for one the caller cannot see, 403 for one it may
    not ``need``, 409 for one already replayed or discarded."""
    bus = bus_of(request)
    tenants = bus.client.runtime.tenants
    for i, dlq_id in enumerate(ids):
        letter = await asyncio.to_thread(bus.index.dead_letter, dlq_id)
        if letter is None or not may_act(who, letter, "read", tenants):
            raise _invisible(f"ids[{i}]")
        if not may_act(who, letter, need, tenants):
            raise forbidden(f"{need} of ids[{i}]", letter.get("tenant") or
                            "(none: a letter of no tenant needs it on every tenant)")
    try:
        return await asyncio.to_thread(bus.desk.select, list(dict.fromkeys(ids)), None)
    except ValueError as exc:
        raise HTTPException(409, {"message": str(exc), "field": "ids"}) from None


async def _matching(request: Request, who: Identity, filters: Filters, need: str
                    ) -> list[dict[str, Any]]:
    """The open letters matching ``filters`` among those the caller may ``need``."""
    bus = bus_of(request)
    tenants = bus.client.runtime.tenants
    if filters.tenant is not None and not who.may(need, filters.tenant, tenants):
        raise forbidden(need, filters.tenant)
    _since(filters.since, "filters.since")
    query = {k: getattr(filters, k) for k in FILTERS}
    letters = await asyncio.to_thread(bus.desk.select, None, query | {
        "within": _scope(who, need, tenants), "limit": MAX_LETTERS + 1})
    if len(letters) > MAX_LETTERS:
        raise HTTPException(422, {"message": f"over {MAX_LETTERS} letters match: narrow the "
                                  "filters", "field": "filters"})
    return letters


def _check_from_step(request: Request, letters: list[dict[str, Any]], step: str) -> None:
    flows = bus_of(request).client.runtime.flows
    for letter in letters:
        try:
            flows.get(letter["flow"]).step(step)
        except KeyError:
            raise HTTPException(422, {"message": f"flow {letter.get('flow')!r} of dead letter "
                                      f"{letter['id']} has no step {step!r}",
                                      "field": "from_step"}) from None


def _summary(letter: dict[str, Any]) -> dict[str, Any]:
    return {k: letter.get(k) for k in ("id", "doc_id", "tenant", "flow", "step")}


@router.post("/replay", summary="resume documents at their failed step",
             openapi_extra=permission("replay"))
async def replay(request: Request, who: Who, body: ReplayRequest) -> dict[str, Any]:
    """The letters ``ids``, or every open letter matching ``filters`` (one or the other);
    ``dry_run`` lists them and changes nothing."""
    if (body.ids is None) == (body.filters is None):
        raise HTTPException(422, {"message": "give dead-letter ids or filters, one of them",
                                  "field": "ids"})
    letters = await _named(request, who, body.ids, "replay") if body.ids is not None \
        else await _matching(request, who, body.filters or Filters(), "replay")
    if body.from_step is not None:
        _check_from_step(request, letters, body.from_step)
    if not body.dry_run and letters:
        await bus_of(request).desk.replay(letters, actor=who.actor, from_step=body.from_step,
                                          rate=body.rate)
    return {"dry_run": body.dry_run, "count": len(letters),
            "letters": [_summary(x) for x in letters], "actor": who.actor}


@router.post("/discard", summary="close dead letters without replaying them",
             openapi_extra=permission("discard"))
async def discard(request: Request, who: Who, body: DiscardRequest) -> dict[str, Any]:
    letters = await _named(request, who, body.ids, "discard")
    await bus_of(request).desk.discard(letters, actor=who.actor, reason=body.reason)
    return {"count": len(letters), "letters": [_summary(x) for x in letters],
            "actor": who.actor}

"""Operator actions on dead letters: replay and discard, each journaled with its actor
(an authenticated identity, ``bus.identity``). The CLI (``demat dlq``) and the HTTP API
(``/v1/dead-letters``) both act through this desk."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from aiokafka import AIOKafkaProducer

from bus.broker import encode
from bus.identity import Identity
from bus.index import Index
from bus.runtime import Runtime
from bus.tenants import TenantRegistry
from schemas.messages import OperatorAction
from schemas.text import check_multi_line, check_single_line

FILTERS = ("tenant", "flow", "step", "error", "since")


def check_action_text(actor: str, reason: str, from_step: str | None) -> None:
    """``ValueError`` naming ``actor``, ``reason`` or ``from_step`` when it holds a control
    character (they reach the journal and terminals), before any letter is acted on."""
    for name, value, check in (("actor", actor, check_single_line),
                               ("reason", reason, check_multi_line),
                               ("from_step", from_step or "", check_single_line)):
        try:
            check(value)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None


def may_act(who: Identity, letter: dict[str, Any], permission: str,
            tenants: TenantRegistry) -> bool:
    """Whether ``who`` holds ``permission`` on the letter's tenant. A letter with no tenant
    (an undecodable message: its raw bytes may be any tenant's) needs ``permission`` on
    every configured tenant."""
    tenant = letter.get("tenant")
    if tenant:
        return who.may(permission, tenant, tenants)
    return all(who.may(permission, t.siren, tenants) for t in tenants)


class DeadLetterDesk:
    """What an operator can do with the dead-letter queue."""

    def __init__(self, runtime: Runtime, index: Index | None = None) -> None:
        self.runtime = runtime
        self.index = index or Index(runtime.settings.database)

    def select(self, ids: list[str] | None, filters: dict[str, Any] | None
               ) -> list[dict[str, Any]]:
        """The open letters named by ``ids``, or every open letter matching ``filters``
        (one or the other: ``ValueError`` otherwise, ``KeyError`` for an unknown id)."""
        if ids and filters is not None:
            raise ValueError("give dead-letter ids or filters, not both")
        if not ids and filters is None:
            raise ValueError("give dead-letter ids, or filters (all open letters matching)")
        return self.find(ids or None, filters or {})

    def find(self, ids: list[str] | None, filters: dict[str, Any]) -> list[dict[str, Any]]:
        """Open letters by id (each must exist and be open) or by filters (any argument of
        ``Index.dead_letters``)."""
        if ids is None:
            return self.index.dead_letters(**filters)
        letters = []
        for dlq_id in ids:
            letter = self.index.dead_letter(dlq_id)
            if letter is None:
                raise KeyError(f"no dead letter {dlq_id}")
            if letter["status"] != "open":
                raise ValueError(f"dead letter {dlq_id} is already {letter['status']} "
                                 f"(by {letter['status_by']})")
            letters.append(letter | {"id": dlq_id})
        return letters

    async def replay(self, letters: list[dict[str, Any]], *, actor: str,
                     from_step: str | None = None, rate: float = 10.0) -> int:
        """Resume each letter's document at its failed step (or ``from_step``)."""
        check_action_text(actor, "", from_step)
        async with self._producer() as producer:
            for i, letter in enumerate(letters):
                if i and rate > 0:
                    await asyncio.sleep(1.0 / rate)
                full = self.index.dead_letter(letter["id"]) or {}
                if full.get("raw") and full.get("source"):
                    await producer.send_and_wait(full["source"]["topic"],
                                                 base64.b64decode(full["raw"]))
                await self._act(producer, full or letter, "replay", actor, "",
                                from_step)
        return len(letters)

    async def discard(self, letters: list[dict[str, Any]], *, actor: str, reason: str) -> int:
        """Close each letter without replaying it; ``reason`` is journaled."""
        check_action_text(actor, reason, None)
        async with self._producer() as producer:
            for letter in letters:
                await self._act(producer, letter, "discard", actor, reason, None)
        return len(letters)

    async def _act(self, producer: AIOKafkaProducer, letter: dict[str, Any], action: str,
                   actor: str, reason: str, from_step: str | None) -> None:
        dlq_id = letter.get("dlq_id") or letter["id"]
        doc_id = letter.get("doc_id") or f"dlq:{dlq_id}"
        msg = OperatorAction(doc_id=doc_id, action=action, actor=actor, reason=reason,
                             dlq_id=dlq_id, from_step=from_step)
        await producer.send_and_wait(self.runtime.topics.router, encode(msg),
                                     key=doc_id.encode())

    def _producer(self) -> _Producer:
        return _Producer(self.runtime.settings.kafka_options)


class _Producer:
    def __init__(self, kafka: dict[str, Any]) -> None:
        self.producer = AIOKafkaProducer(**kafka, acks="all", enable_idempotence=False)

    async def __aenter__(self) -> AIOKafkaProducer:
        await self.producer.start()
        return self.producer

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

"""Waking waiting steps: tell the router that what its documents wait for has happened.

A step that waits on a shared event (an ENSAP lot sent by its leader, a batch SIP
answered) polls on a slowing schedule; the side that makes the event happen wakes
every member, so they finish at once and the polls stay a fallback. A wake can carry
what the member needs to finish (its entry in the lot's receipt), so the woken step
reads nothing back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from bus.broker import encode
from bus.runtime import Runtime
from schemas.messages import Wake

log = logging.getLogger("demat.wake")


async def wake(runtime: Runtime, doc_ids: Iterable[str], step: str, reason: str,
               progress: Mapping[str, dict[str, Any]] | None = None) -> None:
    """Send a ``Wake`` to the router for each document (acknowledged before returning);
    ``progress``: what each document's step should know when it runs (by doc id).

    A wake that cannot be sent is logged, not raised: the members' own polls still come.
    """
    ids = list(doc_ids)
    if not ids:
        return
    topic, known = runtime.topics.router, progress or {}
    try:
        producer = await runtime.producer()
        sends = [await producer.send(topic, encode(Wake(
            doc_id=d, step=step, reason=reason, progress=known.get(d, {}))), key=d.encode())
            for d in ids]
        await asyncio.gather(*sends)
    except Exception as exc:  # the broker is down: polling covers it
        log.warning("could not wake %d documents at step %s: %s", len(ids), step, exc)

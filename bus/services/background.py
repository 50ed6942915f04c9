"""Long-running loops (consumers, timers) run beside a FastStream app's subscribers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from faststream import FastStream


class Loop(Protocol):
    """Something with ``async run()`` that returns soon after ``stop()``."""

    async def run(self) -> None: ...

    def stop(self) -> None: ...


def run_beside(app: FastStream, loop: Loop, then: Callable[[], None] | None = None,
               finish: Callable[[], Awaitable[None]] | None = None) -> None:
    """Start ``loop`` once the app has started; on shutdown stop it, wait for it, await
    ``finish`` (the subscribers still run), then call ``then`` (blocking: in a thread),
    if given."""
    tasks: list[asyncio.Task] = []

    @app.after_startup
    async def _start() -> None:
        tasks.append(asyncio.create_task(loop.run()))

    @app.on_shutdown
    async def _stop() -> None:
        loop.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        if finish is not None:
            await finish()
        if then is not None:
            await asyncio.to_thread(then)

"""Topic names. Every message on them is keyed by document id."""

from __future__ import annotations

from dataclasses import dataclass

DELAY_TIERS_S = (1, 5, 30, 120, 600, 3600)  # delay topics, seconds (see ``bus.delays``)


@dataclass(frozen=True)
class Topics:
    """The bus's topics, under one prefix."""

    prefix: str = "demat"

    @property
    def submit(self) -> str:
        return f"{self.prefix}.submit"

    @property
    def router(self) -> str:
        return f"{self.prefix}.router"

    @property
    def journal(self) -> str:
        return f"{self.prefix}.journal"

    @property
    def dead_letter(self) -> str:
        return f"{self.prefix}.dlq"

    @property
    def webhooks(self) -> str:
        """Pending webhook deliveries (``bus.webhooks.delivery``)."""
        return f"{self.prefix}.webhooks"

    def step(self, kind: str) -> str:
        return f"{self.prefix}.step.{kind}"

    def delay(self, seconds: int) -> str:
        return f"{self.prefix}.delay.{seconds}s"

    @property
    def delay_group(self) -> str:
        return f"{self.prefix}.delay"

    def all(self, step_kinds: list[str]) -> list[str]:
        return [self.submit, self.router, self.journal, self.dead_letter,
                self.webhooks, *(self.step(k) for k in step_kinds),
                *(self.delay(t) for t in DELAY_TIERS_S)]

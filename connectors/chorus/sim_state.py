"""The simulator's state: invoices on the platform and deposited flows."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class SimInvoice:
    """One invoice on the platform: its file, parties and status history."""

    id: int
    number: str
    supplier_id: str
    supplier_name: str
    buyer_id: str
    amount: str
    file: bytes
    name: str
    syntax: str
    flux: str
    account: str  # technical account that deposited it ("" for received ones)
    recipient: str = ""  # technical account that receives it
    scenario: str = "paid"
    created: float = field(default_factory=time.monotonic)
    history: list[tuple[str, str, str]] = field(default_factory=list)  # status, at, comment
    done: int = 0
    downloaded: bool = False

    @property
    def status(self) -> str:
        return self.history[-1][0]

    def set(self, status: str, comment: str = "") -> None:
        self.history.append((status, now(), comment))


@dataclass
class SimFlux:
    numero: str
    account: str
    name: str
    syntax: str
    state: str
    created: float
    deposited_at: str = field(default_factory=now)
    changed_at: str = field(default_factory=now)
    invoice_id: int | None = None
    errors: list[dict[str, str]] = field(default_factory=list)  # listeErreurDP rows
    final_state: str = "IN_INTEGRE"

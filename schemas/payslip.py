"""Metadata of a pay slip (bulletin de paie): agent, period, employer, destinations.

Personal fields (agent name, birth data, e-mail, net amount) and the protected NIR
are declared with ``schemas.personal`` markers: the journal, the index and the logs
never see them in clear. The NIR, birth date and net amount are needed by the ENSAP
channel only (its envelope carries them): required there, optional elsewhere.
Validation messages never repeat a personal value.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.matricule import Matricule
from schemas.metadata import registers
from schemas.nir import check_nir, nir_key
from schemas.personal import PERSONAL, PROTECTED
from schemas.siret import Siret
from schemas.text import AsciiDecimal, Email, SingleLine

__all__ = ["PayslipMetadata", "check_nir", "nir_key"]

PERIOD_RE = re.compile(r"(20[0-9]{2}|2100)-(0[1-9]|1[0-2])")  # every pattern: fullmatch
BIRTH_NAME_RE = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿŒœ' \-]{1,65}")


class Channel(StrEnum):
    """Where the pay slip is delivered."""

    ENSAP = "ensap"
    AGENT_SPACE = "agent-space"
    SECURE_MAIL = "secure-mail"


@registers("payslip")
class PayslipMetadata(BaseModel):
    """What the payroll software says about one pay slip."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    matricule: Matricule = Field(description="agent's payroll number")
    period: str = Field(description="pay period, YYYY-MM")
    employer_siret: Siret
    nir: str | None = Field(default=None, json_schema_extra=PROTECTED)
    agent_name: SingleLine = Field(min_length=1, max_length=200, json_schema_extra=PERSONAL)
    birth_name: str | None = Field(default=None, json_schema_extra=PERSONAL)
    birth_date: date | None = Field(default=None, json_schema_extra=PERSONAL)
    email: Email | None = Field(default=None, json_schema_extra=PERSONAL)
    # needed by ENSAP's envelope only (the other channels deliver the PDF as it is)
    net_amount: AsciiDecimal | None = Field(default=None, ge=0, max_digits=9,
                                            decimal_places=2, json_schema_extra=PERSONAL)
    channels: list[Channel] = Field(min_length=1, max_length=3)
    payment_date: date | None = None
    ensap_batch: EnsapBatch | None = None

    @field_validator("period")
    @classmethod
    def _period(cls, value: str) -> str:
        if not PERIOD_RE.fullmatch(value):
            raise ValueError("period must be YYYY-MM (month 01 to 12)")
        return value

    @field_validator("nir")
    @classmethod
    def _nir(cls, value: str | None) -> str | None:
        return None if value is None else check_nir(value)

    @field_validator("birth_name")
    @classmethod
    def _birth_name(cls, value: str | None) -> str | None:
        if value is not None and not BIRTH_NAME_RE.fullmatch(value):
            raise ValueError("birth name must be 1 to 65 letters, spaces, '-' or \"'\"")
        return value

    @field_validator("channels")
    @classmethod
    def _unique(cls, value: list[Channel]) -> list[Channel]:
        if len(set(value)) != len(value):
            raise ValueError("a channel is listed twice")
        return value

    @model_validator(mode="after")
    def _channel_needs(self) -> PayslipMetadata:
        if Channel.ENSAP in self.channels:
            if self.nir is None:
                raise ValueError("channel ensap needs the agent's nir")
            if self.birth_date is None:
                raise ValueError("channel ensap needs the agent's birth_date")
            if self.net_amount is None:
                raise ValueError("channel ensap needs the net_amount")
        if Channel.SECURE_MAIL in self.channels and self.email is None:
            raise ValueError("channel secure-mail needs the agent's email")
        return self

    @classmethod
    def personal_forms(cls, name: str, value: str) -> list[str]:
        """Other spellings of a personal value that must be hidden too."""
        text = value.replace(" ", "").upper()
        if name == "nir" and len(text) >= 13:
            return [text[:13]]  # ENSAP and file names use the NIR without its key
        if name == "birth_date" and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            return [f"{text[8:10]}{text[5:7]}{text[:4]}", text.replace("-", "")]
        if name == "net_amount":
            return [str(int(Decimal(text) * 100))] if _is_number(text) else []
        return []

    @property
    def period_start(self) -> date:
        return date(int(self.period[:4]), int(self.period[5:]), 1)

    def idempotency_key(self) -> str:
        """Natural key of a pay slip: employer, period, agent."""
        return f"payslip:{self.employer_siret}:{self.period}:{self.matricule}"


class EnsapBatch(BaseModel):
    """Position of the pay slip in an ENSAP batch of its payroll run (set at ingestion)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,60}$")
    index: int = Field(ge=0)
    size: int = Field(ge=1, le=10_000)

    @model_validator(mode="after")
    def _inside(self) -> EnsapBatch:
        if self.index >= self.size:
            raise ValueError(f"batch index {self.index} is not below its size {self.size}")
        return self


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


PayslipMetadata.model_rebuild()


def parse_payslip(metadata: dict[str, Any]) -> PayslipMetadata:
    return PayslipMetadata.model_validate(metadata)

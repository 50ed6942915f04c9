"""Metadata of a cemetery concession deed (the throwaway family's ``schemas/`` module)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.metadata import registers
from schemas.personal import PERSONAL


@registers("cemetery-concession")
class ConcessionMetadata(BaseModel):
    """A concession granted in one of the tenant's cemeteries."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    concession_number: str = Field(pattern=r"^[A-Z]{2}-\d{4}-\d{1,5}$")  # Rust: $ ends the text
    cemetery: str = Field(min_length=1, max_length=100)
    holder: str = Field(min_length=1, max_length=200, json_schema_extra=PERSONAL)
    duration_years: Literal[15, 30, 50, 0]  # 0: perpetual (CGCT L2223-14)
    granted_on: date

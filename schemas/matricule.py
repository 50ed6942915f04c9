"""An agent's payroll number (matricule), as payroll and HR software emit it."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

MATRICULE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,19}")


def check_matricule(value: str) -> str:
    """Return ``value`` if it is 1 to 20 ASCII letters, digits, '_' or '-' (starting with
    a letter or digit), matched whole; else raise ``ValueError``."""
    if not MATRICULE_RE.fullmatch(value):
        raise ValueError("matricule must be 1 to 20 letters, digits, '_' or '-'")
    return value


Matricule = Annotated[str, AfterValidator(check_matricule),
                      Field(description="the agent's payroll number")]

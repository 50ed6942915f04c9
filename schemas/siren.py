"""SIREN (French legal-entity number) validation: 9 digits with a Luhn checksum."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from schemas.text import ascii_digits


def luhn_ok(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def check_siren(value: str) -> str:
    """Return ``value`` if it is a valid SIREN, else raise ``ValueError`` saying why."""
    value = value.replace(" ", "")
    if not ascii_digits(value, 9):
        raise ValueError(f"SIREN must be 9 digits, got {value!r}")
    if not luhn_ok(value):
        raise ValueError(f"SIREN {value} fails its checksum")
    return value


Siren = Annotated[str, AfterValidator(check_siren)]

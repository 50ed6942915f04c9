"""SIRET (French establishment number): 14 digits, SIREN + NIC, Luhn checksum."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from schemas.siren import luhn_ok
from schemas.text import ascii_digits

LA_POSTE_SIREN = "356000000"  # its establishments use a digit-sum rule instead of Luhn


def check_siret(value: str) -> str:
    """Return ``value`` (spaces removed) if it is a valid SIRET, else raise ``ValueError``."""
    value = value.replace(" ", "")
    if not ascii_digits(value, 14):
        raise ValueError(f"SIRET must be 14 digits, got {value!r}")
    la_poste = value.startswith(LA_POSTE_SIREN) and sum(int(c) for c in value) % 5 == 0
    if not (luhn_ok(value) or la_poste):
        raise ValueError(f"SIRET {value} fails its checksum")
    return value


Siret = Annotated[str, AfterValidator(check_siret)]

"""The French social security number (NIR): its syntax, its key, and finding one in text.

Fifteen characters: sex (1-4, 7, 8), birth year, month (01-12, or 20-42 / 50-99 when
unknown), département (2A/2B for Corsica), commune, order number, and a 2-digit key
(97 minus the 13-character number modulo 97, Corsica's 2A/2B counting as 19/18).
"""

from __future__ import annotations

import re

BODY = r"[1-478][0-9]{2}(?:0[1-9]|1[0-2]|[2-4][0-9]|[5-9][0-9])(?:2[AB]|[0-9]{2})[0-9]{6}"
NIR_RE = re.compile(BODY + r"[0-9]{2}", re.ASCII)
# in free text: the same, with the spaces people type between the groups
SPACED = re.compile(r"(?<![0-9A-Za-z])([1-478]) ?([0-9]{2}) ?([0-9]{2}) ?(2[AB]|[0-9]{2}) ?"
                    r"([0-9]{3}) ?([0-9]{3}) ?([0-9]{2})(?![0-9A-Za-z])", re.ASCII | re.I)


def nir_key(nir13: str) -> int:
    """The 2-digit key of a 13-character NIR (Corsica: 2A counts as 19, 2B as 18)."""
    text = nir13.upper()
    digits = text[:5] + {"2A": "19", "2B": "18"}.get(text[5:7], text[5:7]) + text[7:13]
    return 97 - int(digits) % 97


def check_nir(value: str) -> str:
    """A valid 15-character NIR (spaces removed), else ``ValueError`` (value never quoted)."""
    text = value.replace(" ", "").upper()
    if not NIR_RE.fullmatch(text):
        raise ValueError("NIR must be 15 characters: sex, birth year and month, "
                         "département, commune, order number and 2-digit key")
    if nir_key(text[:13]) != int(text[13:]):
        raise ValueError("NIR key does not match its first 13 characters")
    return text


def holds_nir(text: str) -> bool:
    """Whether ``text`` contains a NIR whose key is valid (spaces between groups allowed)."""
    for found in SPACED.finditer(text):
        candidate = "".join(found.groups()).upper()
        if NIR_RE.fullmatch(candidate) and nir_key(candidate[:13]) == int(candidate[13:]):
            return True
    return False

"""Text made safe to print on a terminal: the one helper every ``demat`` command (the
CLI and the commands families register) prints user-provided text through."""

from __future__ import annotations

import unicodedata
from typing import Any

from rich.markup import escape

from schemas.text import BIDI_CONTROLS


def _visible(ch: str) -> str:
    if ch in BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
        return ch.encode("unicode_escape", "backslashreplace").decode("ascii")
    return ch


def shown(value: Any) -> str:
    """``value`` as text a terminal shows as is: control characters (escape sequences,
    newlines, bidi overrides) written as ``\\xNN`` / ``\\uNNNN`` escapes and rich markup
    escaped; ``None`` is the empty string."""
    text = "" if value is None else str(value)
    return escape("".join(_visible(ch) for ch in text))

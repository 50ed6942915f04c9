"""The console's messages per language: one JSON catalogue per language in ``locales/``
(French first; a language is added by dropping its file there). A message missing from a
catalogue falls back to French, then to its key."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

LOCALES = Path(__file__).with_name("locales")
DEFAULT = "fr"
LANG_COOKIE = "demat_lang"


@cache
def catalogue(lang: str) -> dict[str, str]:
    """The messages of ``lang`` (empty for a language without a catalogue)."""
    path = LOCALES / f"{lang}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def languages() -> list[str]:
    return sorted(p.stem for p in LOCALES.glob("*.json"))


def choose(cookie: str | None, accept: str | None) -> str:
    """The language of a request: the cookie's choice, else the browser's first known
    language, else French."""
    known = languages()
    if cookie in known:
        return cookie
    for part in (accept or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in known:
            return code
    return DEFAULT


def translator(lang: str) -> Callable[..., str]:
    """``t(key, default, **values)``: the message ``key`` in ``lang`` (else ``default``,
    else the key itself), formatted with ``values``."""
    messages, fallback = catalogue(lang), catalogue(DEFAULT)

    def t(key: str, default: str | None = None, **values: object) -> str:
        text = messages.get(key) or fallback.get(key) or default or key
        return text.format(**values) if values else text

    return t

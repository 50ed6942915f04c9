"""Strict text and identifier types shared by every metadata model and envelope.

Identifiers are matched whole (``re.fullmatch``: a ``$`` would admit a final newline)
and with ASCII digits only (``[0-9]``: ``\\d`` and ``str.isdigit`` admit fullwidth or
Arabic-Indic digits). Texts that reach a partner, the journal or a terminal refuse
control characters: ``SingleLine`` refuses every one (and Unicode line separators and
bidirectional overrides), ``MultiLine`` lets tab and line breaks through.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

# Bidirectional embeddings, overrides and isolates: they reorder what a terminal shows.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
MULTILINE_ALLOWED = frozenset("\t\n\r")
# A file name travels to GED folders, WebDAV, S²LOW tarballs, SAE packages and ZIPs:
# 255 bytes of UTF-8 is the common file-system limit (ext4, XFS, ZFS, and WebDAV servers
# storing on them); NTFS allows 255 UTF-16 units, which 255 UTF-8 bytes never exceed.
FILE_NAME_MAX_BYTES = 255
EMAIL_MAX = 254  # RFC 5321 path limit
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_RE = re.compile(rf"(?P<local>{_ATOM}(?:\.{_ATOM})*)@(?:{_LABEL}\.)+[A-Za-z]{{2,24}}")


def bad_character(value: str, allowed: frozenset[str] = frozenset()) -> str | None:
    """The first control, separator-of-lines, surrogate or bidi character of ``value``
    not in ``allowed``, as ``U+XXXX``; ``None`` when there is none."""
    for ch in value:
        if ch in allowed:
            continue
        if ch in BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
            return f"U+{ord(ch):04X}"
    return None


def check_single_line(value: str) -> str:
    """``value`` if it holds no control character (newline included), else ``ValueError``."""
    found = bad_character(value)
    if found:
        raise ValueError(f"control character {found} is not allowed (one line of text)")
    return value


def check_multi_line(value: str) -> str:
    """``value`` if its only control characters are tab and line breaks."""
    found = bad_character(value, MULTILINE_ALLOWED)
    if found:
        raise ValueError(f"control character {found} is not allowed")
    return value


def check_email(value: str) -> str:
    """``value`` if it is one plain address (``local@domain.tld``), else ``ValueError``.

    Matched whole, ASCII only: no CR/LF (header injection), no display name, no list.
    """
    match = EMAIL_RE.fullmatch(value)
    if match is None or len(value) > EMAIL_MAX or len(match["local"]) > 64:
        raise ValueError("not a single e-mail address (local@domain.tld, ASCII, no spaces)")
    return value


def check_file_name(value: str) -> str:
    """``value`` if it is a plain file name the targets can store, else ``ValueError``:
    not empty, at most 255 bytes of UTF-8, no ``/`` or ``\\``, no ``..``, no NUL or
    other control character, not only dots and spaces."""
    if not value or not value.strip(" ."):
        raise ValueError("file name is empty")
    if len(value.encode("utf-8", "surrogatepass")) > FILE_NAME_MAX_BYTES:
        raise ValueError(f"file name is longer than {FILE_NAME_MAX_BYTES} bytes (UTF-8)")
    if "/" in value or "\\" in value:
        raise ValueError("file name must not contain a path separator ('/' or '\\')")
    if ".." in value:
        raise ValueError("file name must not contain '..'")
    found = bad_character(value)
    if found:
        raise ValueError(f"file name must not contain control character {found}")
    return value


def check_pattern(regex: re.Pattern[str], value: str, what: str) -> str:
    """``value`` if ``regex`` matches it whole, else ``ValueError`` naming ``what``."""
    if not isinstance(value, str) or regex.fullmatch(value) is None:
        raise ValueError(f"{what} (got {value!r})")
    return value


def ascii_digits(value: str, count: int | None = None) -> bool:
    """True when ``value`` is ASCII digits only (``count`` of them when given)."""
    size = "+" if count is None else f"{{{count}}}"
    return re.fullmatch(f"[0-9]{size}", value) is not None


def _digits(count: int) -> AfterValidator:
    def check(value: str) -> str:
        if not ascii_digits(value, count):
            raise ValueError(f"must be exactly {count} ASCII digits (0-9)")
        return value
    return AfterValidator(check)


def Digits(count: int) -> type[str]:
    """A string of exactly ``count`` ASCII digits."""
    return Annotated[str, _digits(count)]  # type: ignore[return-value]


def _ascii_number(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+(\.[0-9]+)?", value) is None:
        raise ValueError("must be a decimal number written with ASCII digits (0-9)")
    return value


SingleLine = Annotated[str, AfterValidator(check_single_line)]
MultiLine = Annotated[str, AfterValidator(check_multi_line)]
Email = Annotated[str, AfterValidator(check_email), Field(max_length=EMAIL_MAX)]
FileName = Annotated[str, AfterValidator(check_file_name)]
AsciiDecimal = Annotated[Decimal, BeforeValidator(_ascii_number)]  # "12.50", never "１２"

"""Personal data in metadata: declared per field, kept out of journals, indexes and logs.

A metadata model marks a field personal with ``Field(..., json_schema_extra=PERSONAL)``
(or ``PROTECTED`` for identifiers such as the NIR). ``scrub`` replaces every
occurrence of a document's personal values in any JSON-like value (event details,
error messages, step outputs) by ``[redacted]``; ``redacted_view`` gives a metadata
dict where personal fields are replaced by a keyed hash (stable, not reversible).
"""

from __future__ import annotations

import hashlib
import hmac
from functools import cache
from typing import Any

from pydantic import BaseModel

PERSONAL = {"personal": "personal"}
PROTECTED = {"personal": "protected"}
REDACTED = "[redacted]"
MIN_SCRUB_LENGTH = 4  # shorter values (a sex code, a day) would match everywhere


@cache
def personal_fields(model: type[BaseModel]) -> frozenset[str]:
    """Names of the fields ``model`` declares personal or protected."""
    names = set()
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and extra.get("personal"):
            names.add(name)
    return frozenset(names)


def personal_values(model: type[BaseModel], metadata: dict[str, Any]) -> list[str]:
    """The strings to hide for this document: each personal value and its usual forms.

    A model may add forms of its own (e.g. a NIR without its key) with a
    ``personal_forms(name, value) -> list[str]`` classmethod.
    """
    extra = getattr(model, "personal_forms", None)
    values: set[str] = set()
    for name in personal_fields(model):
        value = metadata.get(name)
        if value is None or isinstance(value, bool):
            continue
        text = str(value).strip()
        forms = {text, text.replace(" ", ""), text.upper()}
        if extra is not None:
            forms.update(extra(name, text))
        values.update(f for f in forms if len(f) >= MIN_SCRUB_LENGTH)
    return sorted(values, key=len, reverse=True)


def scrub(value: Any, secrets: list[str]) -> Any:
    """``value`` with every occurrence of ``secrets`` in its strings replaced by [redacted]."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, secrets) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = str(value)
        return REDACTED if text in secrets else value
    return value


def keyed_hash(key: bytes, value: str) -> str:
    """A stable pseudonym of ``value`` (HMAC-SHA-256, truncated): same input, same tag."""
    return "hmac:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:24]


def redacted_view(model: type[BaseModel], metadata: dict[str, Any], key: bytes) -> dict[str, Any]:
    """Metadata with its personal fields replaced by keyed hashes (for journals, receipts)."""
    hidden = personal_fields(model)
    return {k: (keyed_hash(key, str(v)) if k in hidden and v is not None else v)
            for k, v in metadata.items()}

"""Personal data in metadata: declared per field, kept out of journals, indexes and logs.

A metadata model marks a field personal with ``Field(..., json_schema_extra=PERSONAL)``
(or ``PROTECTED`` for identifiers such as the NIR). ``scrub`` replaces every
occurrence of a document's personal values in any JSON-like value (event details,
error messages, step outputs) by ``[redacted]``; ``redacted_view`` gives a metadata
dict where personal fields are replaced by a keyed hash (stable, not reversible).
Wherever an envelope is written (Kafka messages, state records), its personal fields are
sealed with the tenant's key (``sealed``/``opened``, through the sealer the bus installs),
and a NIR outside the declared fields is refused (``undeclared_nir``).
"""

from __future__ import annotations

import hashlib
import hmac
from functools import cache
from typing import Any, Protocol

from pydantic import BaseModel

from schemas.nir import holds_nir

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


# --- sealing: personal metadata encrypted wherever an envelope is written ---------------

SEALED = "$sealed"  # the metadata key holding a document's personal fields, encrypted


class MetadataSealer(Protocol):
    """Encrypts a document's personal metadata fields into ``SEALED`` and back (the bus
    installs one per process: ``bus.privacy.MetadataSealer``)."""

    def seal(self, tenant: str, flow: str, doc_id: str, metadata: dict[str, Any]
             ) -> dict[str, Any]: ...

    def open(self, tenant: str, doc_id: str, metadata: dict[str, Any]) -> dict[str, Any]: ...


_sealer: list[MetadataSealer] = []


def install_sealer(sealer: MetadataSealer) -> None:
    """Make ``sealer`` the one every envelope written or read in this process uses."""
    _sealer[:] = [sealer]


def installed_sealer() -> MetadataSealer | None:
    """The sealer this process uses, if one is installed."""
    return _sealer[0] if _sealer else None


def sealed(tenant: str, flow: str, doc_id: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """``metadata`` as written: its personal fields sealed (as is without a sealer: a
    process that is not a bus process, such as a schema tool)."""
    return _sealer[0].seal(tenant, flow, doc_id, metadata) if _sealer else metadata


def opened(tenant: str, doc_id: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """``metadata`` as read, its sealed fields opened (``ValueError`` without a sealer)."""
    if SEALED not in metadata:
        return metadata
    if not _sealer:
        raise ValueError("metadata holds sealed personal fields and this process has no "
                         "tenant keys to open them")
    return _sealer[0].open(tenant, doc_id, metadata)


# --- undeclared NIRs -------------------------------------------------------------------

def undeclared_nir(model: type[BaseModel], metadata: dict[str, Any]) -> str | None:
    """The path of the first metadata value, outside the fields the model declares
    personal, that looks like a NIR (``None`` if none)."""
    allowed = personal_fields(model)

    def walk(value: Any, path: str) -> str | None:
        if isinstance(value, str):
            return path if holds_nir(value) else None
        if isinstance(value, int) and not isinstance(value, bool):
            return walk(str(value), path)
        items = value.items() if isinstance(value, dict) else \
            enumerate(value) if isinstance(value, list) else ()
        for key, inner in items:
            found = walk(inner, f"{path}.{key}" if isinstance(key, str) else f"{path}[{key}]")
            if found:
                return found
        return None

    for name, value in metadata.items():
        if name not in allowed and (found := walk(value, f"metadata.{name}")):
            return found
    return None

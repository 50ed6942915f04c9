"""Search by business keys, shared by ``demat search`` and the HTTP API: the keys the
flows declare, and the values to look up (personal ones hashed as the router hashed them)."""

from __future__ import annotations

from typing import Any

from bus.flows import FlowRegistry
from schemas.search_keys import normalize


def declared_keys(flows: FlowRegistry) -> dict[str, list[str]]:
    """Every search key the flows declare, with the flows declaring it."""
    keys: dict[str, list[str]] = {}
    for name in flows.names():
        for key in flows.get(name).search_keys:
            keys.setdefault(key, []).append(name)
    return dict(sorted(keys.items()))


def query_keys(pairs: list[tuple[str, str]], flows: Any, hasher: Any) -> dict[str, str]:
    """Normalized key values to look up; personal keys are hashed as the router hashed them."""
    declared: dict[str, bool] = {}
    for name in flows.names():
        for key_name, key in flows.get(name).search_keys.items():
            declared[key_name] = declared.get(key_name, False) or key.personal
    keys = {}
    for name, value in pairs:
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise ValueError(f"no flow declares the search key {name!r} (declared: {known})")
        value = normalize(value)
        keys[name] = hasher(name, value) if declared[name] else value
    return keys

"""Connector types by name: a tenant's configuration says which type serves a role.

A partner's connector registers itself as an entry point of group
``demat.connectors`` (``name = "connectors.<partner>.client:Class"`` in
``pyproject.toml``); the class builds itself with ``from_options(options, var_dir=)``.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

ENTRY_POINT_GROUP = "demat.connectors"


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def connector_types() -> list[str]:
    """Names of the connector types installed."""
    return sorted(_entry_points())


def connector_class(type_name: str) -> Any:
    """The class registered as ``type_name`` (``KeyError`` naming the known types)."""
    try:
        entry = _entry_points()[type_name]
    except KeyError:
        known = ", ".join(connector_types())
        raise KeyError(f"unknown connector type {type_name!r} (known: {known})") from None
    return entry.load()


def build_connector(type_name: str, options: dict[str, Any], var_dir: Path) -> Any:
    """Instantiate the connector class registered as ``type_name`` with its options."""
    return connector_class(type_name).from_options(options, var_dir=var_dir)

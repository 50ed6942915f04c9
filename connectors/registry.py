"""Connector types by name: a tenant's configuration says which type serves a role."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any

CONNECTOR_TYPES: dict[str, str] = {
    "folder": "connectors.ged.folder:FolderDeposit",
    "webdav": "connectors.webdav.client:WebdavDeposit",
    "asalae": "connectors.sae.asalae:AsalaeClient",
    "s2low": "connectors.s2low.client:S2lowClient",
    "chorus": "connectors.chorus.client:ChorusClient",
    "ensap": "connectors.ensap.client:EnsapClient",
    "securemail": "connectors.securemail.client:SecureMailClient",
    "seal": "connectors.seal:LocalSeal",
    "iparapheur": "connectors.iparapheur.client:IparapheurClient",
}


def build_connector(type_name: str, options: dict[str, Any], var_dir: Path) -> Any:
    """Instantiate the connector class registered as ``type_name`` with its options."""
    try:
        module_name, _, attr = CONNECTOR_TYPES[type_name].partition(":")
    except KeyError:
        known = ", ".join(sorted(CONNECTOR_TYPES))
        raise KeyError(f"unknown connector type {type_name!r} (known: {known})") from None
    factory: Callable[..., Any] = getattr(import_module(module_name), attr)
    return factory.from_options(options, var_dir=var_dir)

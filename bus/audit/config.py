"""What the audit journal needs from the configuration: its digest, the bus secrets.

A router journals a ``configuration-changed`` event (pseudo-document
``bus:configuration``) when it starts with flows/tenants whose digest differs
from the last one journaled. Only digests are journaled (tenant connector
options hold credentials): one per flow and per tenant, so the journal tells
which part changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path

from bus.audit.chain import canonical
from bus.runtime import Runtime
from bus.settings import Settings
from connectors.private import private_dir
from schemas.messages import ConfigurationLoaded
from schemas.search_keys import KeyHasher


def configuration_message(runtime: Runtime) -> ConfigurationLoaded:
    """The digest of the flows and tenants this process runs."""
    parts: dict[str, str] = {}
    for name in runtime.flows.names():
        parts[f"flow:{name}"] = _digest(runtime.flows.get(name).model_dump(mode="json"))
    for tenant in runtime.tenants:
        parts[f"tenant:{tenant.siren}"] = _digest(tenant.model_dump(mode="json"))
    return ConfigurationLoaded(digest=_digest(parts), parts=parts,
                               router=f"router@{socket.gethostname()}")


def _digest(value: object) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


def read_or_create_secret(path: Path, make: Callable[[], bytes]) -> bytes:
    """The bytes of ``path``, created once with ``make()`` (safe when processes race)."""
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(make())
    for _ in range(50):  # another process may be writing it right now
        data = path.read_bytes()
        if data:
            return data
        time.sleep(0.05)
    raise RuntimeError(f"{path} is empty")


def index_secret(settings: Settings) -> bytes:
    """The bus secret keying personal search keys (DEMAT_INDEX_SECRET, else var/audit/)."""
    if settings.index_secret:
        return settings.index_secret.encode()
    return read_or_create_secret(settings.var_dir / "audit" / "index-secret",
                                 lambda: secrets.token_hex(32).encode()).strip()


def key_hasher(settings: Settings) -> KeyHasher:
    """HMAC-SHA256 of a personal key value, keyed with the bus secret."""
    secret = index_secret(settings)

    def hasher(name: str, value: str) -> str:
        return hmac.new(secret, f"{name}\x00{value}".encode(), hashlib.sha256).hexdigest()

    return hasher

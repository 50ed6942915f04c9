"""Keeping personal metadata out of the journal, the index and the logs.

Which fields are personal is declared by each flow's metadata model (see
``schemas.personal``); this module finds a document's personal values from its
envelope so any text about it can be scrubbed before it leaves the process, and seals
those fields wherever an envelope is written (``MetadataSealer``).
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bus.crypto import Keyring
from bus.flows import FlowRegistry
from schemas.envelope import Envelope
from schemas.metadata import metadata_model
from schemas.personal import (
    SEALED,
    install_sealer,
    installed_sealer,
    personal_fields,
    personal_values,
    scrub,
)

log = logging.getLogger("demat.privacy")


def envelope_secrets(env: Envelope | None, flows: FlowRegistry) -> list[str]:
    """The personal values of a document (empty for flows without personal fields)."""
    if env is None or not env.metadata:
        return []
    try:
        model = metadata_model(flows.get(env.flow).metadata_model)
    except KeyError:  # unknown flow: a refused submission; hide every string value
        return [str(v) for v in env.metadata.values() if isinstance(v, str) and len(v) >= 4]
    if not personal_fields(model):
        return []
    return personal_values(model, env.metadata)


def scrub_for(env: Envelope | None, flows: FlowRegistry, value: Any) -> Any:
    """``value`` without any of the document's personal values."""
    return scrub(value, envelope_secrets(env, flows))


class MetadataSealer:
    """Seals a document's personal metadata fields (those its flow's metadata model
    declares) with a key derived from the tenant's KEK: AES-256-GCM, a fresh nonce each
    time, the tenant and document id as associated data (a sealed blob opens only in its
    own document). ``opened`` tries the keyrings of every bus this process has loaded,
    newest first (a test process loads several)."""

    PURPOSE = "metadata-seal"

    def __init__(self, keyring: Keyring, flows: Callable[[], FlowRegistry]) -> None:
        self.keyrings = [keyring]
        self.flows = flows

    def add(self, keyring: Keyring, flows: Callable[[], FlowRegistry]) -> None:
        """Seal with ``keyring`` from now on; keep opening with the earlier ones."""
        self.keyrings = [keyring, *[k for k in self.keyrings if k.dir != keyring.dir][:7]]
        self.flows = flows

    def seal(self, tenant: str, flow: str, doc_id: str, metadata: dict[str, Any]
             ) -> dict[str, Any]:
        hidden = {k: v for k in self._personal(flow) if (v := metadata.get(k)) is not None}
        if not hidden:
            return metadata
        nonce = os.urandom(12)
        box = AESGCM(self.keyrings[0].derived(tenant, self.PURPOSE))
        blob = box.encrypt(nonce, json.dumps(hidden, default=str).encode(),
                           f"{tenant}/{doc_id}".encode())
        kept = {k: v for k, v in metadata.items() if k not in hidden}
        return kept | {SEALED: "v1." + base64.b64encode(nonce + blob).decode()}

    def open(self, tenant: str, doc_id: str, metadata: dict[str, Any]) -> dict[str, Any]:
        version, _, text = str(metadata[SEALED]).partition(".")
        if version != "v1":
            raise ValueError(f"metadata.{SEALED}: unknown sealing {version!r}")
        raw = base64.b64decode(text)
        for keyring in self.keyrings:
            box = AESGCM(keyring.derived(tenant, self.PURPOSE))
            try:
                clear = box.decrypt(raw[:12], raw[12:], f"{tenant}/{doc_id}".encode())
            except InvalidTag:
                continue
            kept = {k: v for k, v in metadata.items() if k != SEALED}
            return kept | json.loads(clear)
        raise ValueError(f"metadata.{SEALED}: does not open with tenant {tenant}'s key "
                         f"for document {doc_id}")

    def _personal(self, flow: str) -> frozenset[str]:
        try:
            return personal_fields(metadata_model(self.flows().get(flow).metadata_model))
        except KeyError:  # an unknown flow: a submission intake refuses; nothing declared
            return frozenset()


def install_metadata_sealer(keyring: Keyring, flows: Callable[[], FlowRegistry]) -> None:
    """Seal and open envelopes' personal metadata in this process with ``keyring``."""
    current = installed_sealer()
    if isinstance(current, MetadataSealer):
        current.add(keyring, flows)
    else:
        install_sealer(MetadataSealer(keyring, flows))

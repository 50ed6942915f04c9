"""Keeping personal metadata out of the journal, the index and the logs.

Which fields are personal is declared by each flow's metadata model (see
``schemas.personal``); this module finds a document's personal values from its
envelope so any text about it can be scrubbed before it leaves the process.
"""

from __future__ import annotations

import logging
from typing import Any

from bus.flows import FlowRegistry
from schemas.envelope import Envelope
from schemas.metadata import metadata_model
from schemas.personal import personal_fields, personal_values, scrub

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

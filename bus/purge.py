"""The router's side of a purge: a terminal document past its retention loses its files
and its personal metadata; its journal, checkpoints and receipts stay.

The router is the only writer of a document's state, so ``demat purge``
(``bus.retention``) sends it an ``OperatorAction(action="purge")``; this transition
marks the state ``purged`` (the files it named, the personal fields), renames its file
references (a file name may be personal), drops the personal fields from the envelope,
and journals a ``purged`` event listing what was removed. Only then does ``demat purge``
delete the objects, those no other document still refers to. The journal's earlier
events keep their content (sealed, hashed): a purge adds to the proofs, it rewrites none.
"""

from __future__ import annotations

from collections.abc import Callable

from bus.flows import FlowRegistry
from schemas.messages import DocumentState, OperatorAction, Purged
from schemas.metadata import metadata_model
from schemas.personal import personal_fields

Journal = Callable[..., None]  # Engine._event(out, kind, detail=..., actor=...)


def refusal(state: DocumentState | None) -> str | None:
    """Why this document cannot be purged, or None."""
    if state is None or state.envelope is None:
        return "no such document"
    if not state.state.terminal:
        return f"document is {state.state.value}: only finished documents are purged"
    if state.purged is not None:
        return f"already purged on {state.purged.at.isoformat(timespec='seconds')}"
    return None


def stored_files(state: DocumentState) -> list[str]:
    """SHA-256 of every file and artefact the state refers to."""
    env = state.envelope
    shas = [f.sha256 for f in env.files] if env is not None else []
    return list(dict.fromkeys(shas + [a.file.sha256 for a in state.artefacts]))


def purge(state: DocumentState, msg: OperatorAction, flows: FlowRegistry) -> dict:
    """Remove the files and personal metadata from ``state`` (a document ``refusal``
    accepts); the ``purged`` event's detail."""
    env = state.envelope
    assert env is not None
    try:
        personal = personal_fields(metadata_model(flows.get(env.flow).metadata_model))
    except KeyError:
        personal = frozenset(env.metadata)
    fields = sorted(k for k in env.metadata if k in personal)
    files = stored_files(state)
    state.purged = Purged(actor=msg.actor, files=files, metadata=fields)
    env.metadata = {k: v for k, v in env.metadata.items() if k not in personal}
    env.files = [f.model_copy(update={"name": f"purged-{f.sha256[:12]}"}) for f in env.files]
    state.artefacts = [a.model_copy(update={"file": a.file.model_copy(
        update={"name": f"purged-{a.file.sha256[:12]}"})}) for a in state.artefacts]
    return {"actor": msg.actor, "reason": msg.reason, "policy": msg.policy,
            "files": files, "metadata": fields}

"""``demat export``: every artefact of one document, as files an archivist can read."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from bus.index import Index
from bus.runtime import Runtime
from schemas.messages import DocumentState


def export_document(runtime: Runtime, doc_id: str, dest: Path) -> dict[str, Any]:
    """Write files, artefacts, state, metadata and journal of ``doc_id`` under ``dest``."""
    state = runtime.states.load_sync(doc_id)
    if state is None or state.envelope is None:
        raise KeyError(f"no document {doc_id} on this bus")
    env = state.envelope
    dest.mkdir(parents=True, exist_ok=True)
    written: list[dict[str, Any]] = []
    used: set[Path] = set()
    for ref in env.files:
        path = _unique(dest / "files" / Path(ref.name).name, used)
        runtime.store.save_file(env.tenant, ref, path)
        written.append({"path": str(path.relative_to(dest)), "sha256": ref.sha256,
                        "role": ref.role, "kind": "submitted"})
    for art in state.artefacts:
        path = _unique(dest / "artefacts" / art.step / Path(art.file.name).name, used)
        runtime.store.save_file(env.tenant, art.file, path)
        written.append({"path": str(path.relative_to(dest)), "sha256": art.file.sha256,
                        "step": art.step, "kind": art.kind})
    journal = Index(runtime.settings.database).events(doc_id)
    clear = {"clear": True}  # the archivist's copy: personal fields as submitted
    for name, value in (("envelope.json", env.model_dump(mode="json", context=clear)),
                        ("metadata.json", env.metadata),
                        ("state.json", state.model_dump(mode="json", context=clear)),
                        ("journal.json", journal)):
        data = json.dumps(value, indent=2, ensure_ascii=False).encode()
        (dest / name).write_bytes(data)
        written.append({"path": name, "sha256": hashlib.sha256(data).hexdigest(),
                        "kind": "record"})
    manifest = {"document": doc_id, "tenant": env.tenant, "flow": env.flow,
                "state": state.state, "files": written, "versions_used": versions_used(state)}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    return manifest


def versions_used(state: DocumentState) -> list[dict[str, Any]]:
    """Per step, which version of each file it sent, deposited or archived (signed or
    original), as the step recorded it (``file_versions`` in its output)."""
    return [{"step": name, **use} for name, output in state.outputs().items()
            for use in output.get("file_versions") or []]


def _unique(path: Path, used: set[Path]) -> Path:
    """``path``, or ``name-2.ext``... if this export already wrote that name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate, n = path, 1
    while candidate in used:
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    used.add(candidate)
    return candidate

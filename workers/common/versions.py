"""Which version of each file later steps use: the latest signed or sealed one.

A signing step (``sign``: local seal or i-Parapheur) reports what it produced in its
output: ``signatures`` (one entry per file: ``file`` the original's name, ``artefact``
the stored result, ``detached`` for a signature kept beside the file) and
``signed_file`` (the first file with its signature inside). Every step after it that
sends, deposits or archives a file asks this module for the file's current version,
so the signed PDF or XAdES PES is what travels, and each use is recorded on the step
context (``file_versions`` in the step's output, shown by ``demat export``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.envelope import FileRef, FileRole
from schemas.messages import StepTask
from workers.step import StepContext, StepError


@dataclass(frozen=True)
class FileVersion:
    """One submitted file as later steps see it."""

    original: FileRef
    current: FileRef
    step: str | None = None  # the step that produced ``current`` (None: as submitted)
    detached: tuple[FileRef, ...] = field(default=())  # signatures over ``current``

    @property
    def signed(self) -> bool:
        return self.step is not None or bool(self.detached)

    def describe(self) -> dict[str, Any]:
        """What a step's output records of the version it used."""
        return {"file": self.current.name, "sha256": self.current.sha256,
                "version": "signed" if self.step else "original", "by_step": self.step,
                "original": self.original.name, "original_sha256": self.original.sha256,
                "detached_signatures": [d.sha256 for d in self.detached]}


def file_versions(task: StepTask) -> list[FileVersion]:
    """Every submitted file with its latest signed version (steps in flow order)."""
    files = task.envelope.files
    versions = [FileVersion(ref, ref) for ref in files]
    for step_name, output in task.outputs.items():
        for index, signed, detached in _produced(files, output):
            old = versions[index]
            ref = _as(signed, old.original.role) if signed else None
            if ref is not None:  # a new embedded version: earlier detached ones cover the old
                versions[index] = FileVersion(old.original, ref, step_name)
            elif detached:
                versions[index] = FileVersion(old.original, old.current, old.step,
                                              (*old.detached, _as(detached, FileRole.SIGNATURE)))
    return versions


def _produced(files: list[FileRef], output: dict[str, Any]
              ) -> list[tuple[int, dict[str, Any] | None, dict[str, Any] | None]]:
    """(file index, embedded version, detached signature) a step's output reports."""
    found = []
    for entry in output.get("signatures") or []:
        art = entry.get("artefact")
        index = _index_of(files, entry.get("file"), entry.get("original"))
        if not _is_ref(art) or index is None:
            continue
        found.append((index, None, art) if entry.get("detached") else (index, art, None))
    signed = output.get("signed_file")
    if _is_ref(signed) and not any(s for _, s, _ in found):
        index = _first_main(files)
        if index is not None:
            found.append((index, signed, None))
    return found


def _index_of(files: list[FileRef], *names: Any) -> int | None:
    for name in names:
        for i, ref in enumerate(files):
            if name and ref.name == name:
                return i
    mains = [i for i, ref in enumerate(files) if ref.role == FileRole.MAIN]
    return mains[0] if len(mains) == 1 and any(names) else None


def _first_main(files: list[FileRef]) -> int | None:
    return next((i for i, ref in enumerate(files) if ref.role == FileRole.MAIN), None)


def _is_ref(value: Any) -> bool:
    return isinstance(value, dict) and {"sha256", "size", "name"} <= set(value)


def _as(value: dict[str, Any], role: FileRole) -> FileRef:
    return FileRef.model_validate({"media_type": "application/octet-stream"} | value
                                  | {"role": role})


# --- what steps call ---------------------------------------------------------------------


def current_main(ctx: StepContext) -> FileRef:
    """The document's main file in its latest signed version (recorded as used)."""
    versions = file_versions(ctx.task)
    main = next((v for v in versions if v.original.role == FileRole.MAIN), None)
    if main is None:
        raise StepError("the document has no main file", field="files")
    _record(ctx, [main])
    return main.current


def current_version(ctx: StepContext, original: FileRef) -> FileRef:
    """``original`` in its latest signed version (recorded as used)."""
    version = next((v for v in file_versions(ctx.task) if v.original == original),
                   FileVersion(original, original))
    _record(ctx, [version])
    return version.current


def current_files(ctx: StepContext, *, with_signatures: bool = True) -> list[FileRef]:
    """Every file in its latest version, then the detached signatures over them."""
    versions = file_versions(ctx.task)
    _record(ctx, versions)
    files = [v.current for v in versions]
    if with_signatures:
        files += [sig for v in versions for sig in v.detached]
    return files


def _record(ctx: StepContext, versions: list[FileVersion]) -> None:
    seen = {u["sha256"] for u in ctx.used_versions}
    ctx.used_versions.extend(v.describe() for v in versions if v.current.sha256 not in seen)


def archived_files(ctx: StepContext) -> list[FileRef]:
    """What a SIP carries of a document: every file in its latest version, the detached
    signatures over them, and the signature history a signing step kept
    (``signature_history`` in its output: i-Parapheur's PREMIS / history)."""
    files = current_files(ctx)
    held = {ref.sha256 for ref in files}
    for output in ctx.task.outputs.values():
        history = output.get("signature_history")
        if _is_ref(history) and history["sha256"] not in held:
            held.add(history["sha256"])
            files.append(_as(history, FileRole.ANNEX))
    return files

"""The folder ZIP of the i-Parapheur v5 standard API (``GET .../folder/{id}/zip``).

Layout (as Pastell's i-Parapheur v5 connector reads it): the PREMIS summary
``i_Parapheur_internal_premis.xml`` at the root, the main documents (signed in place, or
with their detached signatures beside them) under ``Documents principaux/``, the annexes
under ``Annexes/``, and the signature slip ``<folder name>_bordereau.pdf``.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field

from connectors.iparapheur.premis import Premis, PremisError, parse

PREMIS_NAME = "i_Parapheur_internal_premis.xml"
MAIN_DIR = "Documents principaux"
ANNEX_DIR = "Annexes"
BORDEREAU_SUFFIX = "_bordereau.pdf"
MAX_ENTRY = 512 * 1024 * 1024  # refuse absurd entries (zip bombs)


class BundleError(ValueError):
    """A ZIP that is not an i-Parapheur folder export (the message names the entry)."""


@dataclass
class FolderBundle:
    """What a folder ZIP holds."""

    premis_xml: bytes
    premis: Premis
    documents: dict[str, bytes] = field(default_factory=dict)  # main documents by name
    annexes: dict[str, bytes] = field(default_factory=dict)
    detached: dict[str, dict[str, bytes]] = field(default_factory=dict)  # doc -> name -> CMS
    bordereau: tuple[str, bytes] | None = None


def read(data: bytes) -> FolderBundle:
    """Split a folder ZIP into its PREMIS, documents, detached signatures and slip."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise BundleError(f"not a ZIP archive: {exc}") from None
    entries = {}
    for info in archive.infolist():
        if info.is_dir():
            continue
        if info.file_size > MAX_ENTRY:
            raise BundleError(f"entry {info.filename!r} is too large ({info.file_size} bytes)")
        entries[info.filename.lstrip("/")] = archive.read(info)
    if PREMIS_NAME not in entries:
        raise BundleError(f"no {PREMIS_NAME} in the archive")
    try:
        premis = parse(entries[PREMIS_NAME])
    except PremisError as exc:
        raise BundleError(f"{PREMIS_NAME}: {exc}") from None
    bundle = FolderBundle(entries.pop(PREMIS_NAME), premis)
    _split(bundle, entries)
    return bundle


def _split(bundle: FolderBundle, entries: dict[str, bytes]) -> None:
    mains = {f.name for f in bundle.premis.files if f.main}
    for path, content in entries.items():
        folder, _, name = path.rpartition("/")
        if not folder and name.endswith(BORDEREAU_SUFFIX):
            bundle.bordereau = (name, content)
        elif folder == ANNEX_DIR:
            bundle.annexes[name] = content
        elif folder == MAIN_DIR and name in mains:
            bundle.documents[name] = content
        elif folder == MAIN_DIR:
            owner = _owner(name, mains)
            bundle.detached.setdefault(owner, {})[name] = content
    missing = sorted(mains - bundle.documents.keys())
    if missing:
        raise BundleError(f"main document(s) {', '.join(missing)} missing from "
                          f"{MAIN_DIR}/")


def _owner(signature: str, mains: set[str]) -> str:
    """The main document a detached signature belongs to (longest name prefix)."""
    stems = sorted(((m.rpartition(".")[0] or m, m) for m in mains), key=lambda s: -len(s[0]))
    return next((m for stem, m in stems if signature.startswith(stem)),
                next(iter(sorted(mains)), ""))


def write(premis: Premis, documents: dict[str, bytes], annexes: dict[str, bytes],
          detached: dict[str, bytes], bordereau: bytes) -> bytes:
    """A folder ZIP in the same layout (what the simulator serves)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(PREMIS_NAME, premis.to_xml())
        for name, content in {**documents, **detached}.items():
            archive.writestr(f"{MAIN_DIR}/{name}", content)
        for name, content in annexes.items():
            archive.writestr(f"{ANNEX_DIR}/{name}", content)
        archive.writestr(f"{premis.name}{BORDEREAU_SUFFIX}", bordereau)
    return out.getvalue()

"""ACTES archives: the gzipped tar of envelope, forms and documents exchanged with
S²LOW, packed, unpacked (bounded) and verified."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from pydantic import BaseModel

from connectors.s2low.actes.build import (
    build_acte,
    build_envelope,
)
from connectors.s2low.actes.common import (
    MSG_TRANSMISSION,
    QUADRIGRAMME,
    TRIGRAMME,
    ActesError,
    acte_base,
    archive_file_name,
    assert_valid,
    envelope_file_name,
    message_file_name,
)
from connectors.s2low.actes.parse import EnveloppeCLMISILL, parse_message, referenced_files
from schemas.acte import (
    ActeMetadata,
    TenantActesSettings,
)


class ArchiveFile(BaseModel):
    """A file of an archive: its ACTES name and content."""

    name: str
    data: bytes


class ActesArchive(BaseModel):
    """A ready-to-send ``.tar.gz`` and what is in it."""

    name: str
    data: bytes
    envelope_name: str
    form_name: str
    file_names: list[str]
    official_id: str | None = None


def pack(files: Iterable[ArchiveFile]) -> bytes:
    """A gzipped tar of ``files``, flat, with fixed times (same input, same bytes)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for f in files:
            info = tarfile.TarInfo(f.name)
            info.size, info.mode, info.mtime = len(f.data), 0o644, 0
            tar.addfile(info, io.BytesIO(f.data))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


MAX_UNPACKED = 160 * 1024 * 1024  # an ACTES transmission is at most 150 MB


def unpack(data: bytes, max_files: int = 1000, max_bytes: int = MAX_UNPACKED
           ) -> dict[str, bytes]:
    """Files of a ``.tar.gz`` by name; raises ``ActesError`` on anything but flat files,
    a name twice (one would hide the other) or more than ``max_bytes`` in all."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = tar.getmembers()
            if len(members) > max_files:
                raise ActesError(f"archive holds too many files ({len(members)})")
            if sum(m.size for m in members) > max_bytes:
                raise ActesError(f"archive expands beyond {max_bytes} bytes")
            out = {}
            for m in members:
                if not m.isfile() or "/" in m.name or m.name.startswith((".", "-")):
                    raise ActesError(f"archive entry not allowed: {m.name!r}")
                if m.name in out:
                    raise ActesError(f"archive holds {m.name!r} twice")
                out[m.name] = tar.extractfile(m).read()  # type: ignore[union-attr]
            return out
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ActesError(f"bad archive format (.tar.gz required): {exc}") from exc


def build_message_archive(settings: TenantActesSettings, form_name: str, form: bytes,
                          documents: list[ArchiveFile], *, serial: int, sent_on: date,
                          trigramme: str = TRIGRAMME) -> ActesArchive:
    """Envelope + one form + its documents, validated, packed."""
    assert_valid(form, form_name)
    env_name = envelope_file_name(settings.siren, sent_on, serial)
    envelope = assert_valid(build_envelope(settings, [form_name]), env_name)
    files = [ArchiveFile(name=env_name, data=envelope), ArchiveFile(name=form_name, data=form),
             *documents]
    return ActesArchive(name=archive_file_name(env_name, trigramme), data=pack(files),
                        envelope_name=env_name, form_name=form_name,
                        file_names=[f.name for f in files])


def acte_documents(settings: TenantActesSettings, meta: ActeMetadata, pdf: bytes,
                   annexes: list[bytes], typology_prefix: bool = True) -> list[ArchiveFile]:
    """The main document then the annexes, named as in the transmission (serial 1, 2...)."""
    if len(annexes) != len(meta.annexes):
        raise ActesError(f"annexes: {len(meta.annexes)} described, {len(annexes)} given")
    base = acte_base(settings, meta)
    docs = [ArchiveFile(name=message_file_name(
        base, MSG_TRANSMISSION, 1, "pdf", meta.main_typology if typology_prefix else None),
        data=pdf)]
    for i, (entry, data) in enumerate(zip(meta.annexes, annexes, strict=True), start=2):
        ext = Path(entry.file_name).suffix.lstrip(".").lower() or "pdf"
        docs.append(ArchiveFile(name=message_file_name(
            base, MSG_TRANSMISSION, i, ext, entry.typology if typology_prefix else None),
            data=data))
    return docs


def build_acte_archive(settings: TenantActesSettings, meta: ActeMetadata, pdf: bytes,
                       annexes: list[bytes] | None = None, *, serial: int = 1,
                       sent_on: date | None = None, trigramme: str = TRIGRAMME,
                       typology_prefix: bool = True) -> ActesArchive:
    """The transmission of an acte (message 1-1) as the archive S²LOW sends on."""
    if not pdf.startswith(b"%PDF"):
        raise ActesError("the main document must be a PDF")
    docs = acte_documents(settings, meta, pdf, annexes or [], typology_prefix)
    base = acte_base(settings, meta)
    form_name = message_file_name(base, MSG_TRANSMISSION, 0, "xml")
    form = build_acte(meta, docs[0].name, [d.name for d in docs[1:]])
    archive = build_message_archive(settings, form_name, form, docs, serial=serial,
                                    sent_on=sent_on or date.today(), trigramme=trigramme)
    archive.official_id = base
    return archive


class VerifiedArchive(BaseModel):
    """An archive that passed ``verify_archive``."""

    envelope: EnveloppeCLMISILL
    forms: dict[str, bytes]
    files: dict[str, bytes]


def verify_archive(name: str, data: bytes, *, trigramme: str = TRIGRAMME,
                   quadrigramme: str = QUADRIGRAMME) -> VerifiedArchive:
    """Check name, format, schema validity and completeness as the platform does."""
    parts = name.split("-")
    if len(parts) < 2 or not name.endswith(".tar.gz"):
        raise ActesError(f"archive name is not correct: {name!r}")
    if parts[0] != trigramme or parts[1] != quadrigramme:
        raise ActesError(f"archive name must start with {trigramme}-{quadrigramme}-: {name!r}")
    files = unpack(data)
    env_name = name.removeprefix(f"{trigramme}-").removesuffix(".tar.gz") + ".xml"
    if env_name not in files:
        raise ActesError(f"envelope {env_name} missing from the archive")
    envelope = parse_message(assert_valid(files[env_name], env_name))
    if not isinstance(envelope, EnveloppeCLMISILL):
        raise ActesError(f"{env_name} is a {envelope.kind}, not an EnveloppeCLMISILL")
    forms = {}
    for form_name in envelope.forms:
        if form_name not in files:
            raise ActesError(f"form {form_name} listed in the envelope is missing")
        forms[form_name] = assert_valid(files[form_name], form_name)
        for ref in referenced_files(parse_message(forms[form_name])):
            if ref not in files:
                raise ActesError(f"{ref} referenced by {form_name} is missing")
    return VerifiedArchive(envelope=envelope, forms=forms, files=files)

"""What one gleaned item holds: its flux, fields and files, from its XML manifest (which
wins), else from the file patterns (``file_preg_match``) and the static metadata
(``metadata_static``), as the incumbent's glaneur reads them."""

from __future__ import annotations

import posixpath
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from bus.glaneur.config import GlaneurSettings
from bus.unzip import ZipRefused, extract_zip
from schemas.safexml import XmlRefused, parse_xml

_MATCH = re.compile(r"\$matches\[(\d+)\]\[(\d+)\]")
_FIELD = re.compile(r"%([A-Za-z0-9_-]+)%")
_DELIMITED = re.compile(r"^([#/~|])(?P<body>.*)\1(?P<flags>[imsux]*)$")


class ItemRefused(ValueError):
    """The item cannot become a document (the reason goes to the error folder)."""


@dataclass
class Gleaned:
    """A document to create: flux, fields, and files per field (name, content)."""

    flux: str
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)

    @property
    def file_names(self) -> list[str]:
        return [name for found in self.files.values() for name, _ in found]


def unzip(data: bytes, name: str) -> dict[str, bytes]:
    """The files of a ZIP item (bounded expansion, ``bus.unzip``), by base name."""
    with tempfile.TemporaryDirectory(prefix="demat-glaneur-") as tmp:
        archive = Path(tmp) / "item.zip"
        archive.write_bytes(data)
        try:
            expanded = extract_zip(archive, Path(tmp) / "out")
        except (zipfile.BadZipFile, ZipRefused, OSError, EOFError) as exc:
            raise ItemRefused(f"{name} : archive ZIP illisible ({exc})") from None
        with expanded:
            root = Path(expanded.name)
            return {p.name: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def glean(settings: GlaneurSettings, files: dict[str, bytes]) -> Gleaned:
    """The document of an item's ``files`` (by base name)."""
    files = {posixpath.basename(k): v for k, v in files.items()}
    if settings.manifest_type == "xml":
        if settings.manifest_filename not in files:
            raise ItemRefused(f"le manifeste {settings.manifest_filename} est absent")
        return from_manifest(settings, files)
    if not settings.flux_name:
        raise ItemRefused("flux_name n'est pas renseigné et il n'y a pas de manifeste")
    found = Gleaned(settings.flux_name)
    matches = match_files(settings.file_preg_match, list(files), found)
    for name_list in found.files.values():
        name_list[:] = [(n, files[n]) for n, _ in name_list]
    found.fields |= static_fields(settings.metadata_static, found, matches)
    return found


def from_manifest(settings: GlaneurSettings, files: dict[str, bytes]) -> Gleaned:
    """``<flux type="…"><data name="…" value="…"/><files name="…"><file content="…"/>``."""
    try:
        root = parse_xml(files[settings.manifest_filename], what=settings.manifest_filename)
    except XmlRefused as exc:
        raise ItemRefused(str(exc)) from None
    flux = root.get("type") or settings.flux_name
    if not flux:
        raise ItemRefused(f"{settings.manifest_filename} : l'attribut type est absent")
    found = Gleaned(flux)
    for data in root.iter("data"):
        if data.get("name"):
            found.fields[data.get("name")] = data.get("value", "")
    for group in root.iter("files"):
        for item in group.iter("file"):
            name = item.get("content", "")
            if name not in files:
                raise ItemRefused(f"{settings.manifest_filename} cite le fichier {name!r} "
                                  "absent de l'élément")
            found.files.setdefault(group.get("name", ""), []).append((name, files[name]))
    return found


def _regex(text: str, matches: list[list[str]]) -> re.Pattern[str]:
    text = _MATCH.sub(lambda m: re.escape(_group(matches, m)), text.strip())
    flags = 0
    if delimited := _DELIMITED.match(text):
        text = delimited["body"]
        flags = re.IGNORECASE if "i" in delimited["flags"] else 0
    try:
        return re.compile(text, flags)
    except re.error as exc:
        raise ItemRefused(f"file_preg_match : expression {text!r} invalide ({exc})") from None


def _group(matches: list[list[str]], m: re.Match[str]) -> str:
    line, group = int(m[1]), int(m[2])
    if line >= len(matches) or group >= len(matches[line]):
        raise ItemRefused(f"{m[0]} ne désigne aucune capture")
    return matches[line][group]


def match_files(lines: str, names: list[str], found: Gleaned,
                matches: list[list[str]] | None = None) -> list[list[str]]:
    """Give each file to the first line (``field: regex``) it matches; the captures of
    each line's first match (``$matches[line][group]``), after those of ``matches``."""
    matches = list(matches or [])
    left = list(names)
    for line in filter(str.strip, lines.splitlines()):
        name, sep, pattern = line.partition(":")
        if not sep:
            raise ItemRefused(f"file_preg_match : ligne {line!r} sans « : »")
        regex = _regex(pattern, matches)
        hits = [(n, regex.search(n)) for n in left]
        taken = [(n, m) for n, m in hits if m]
        matches.append([taken[0][1][0], *taken[0][1].groups("")] if taken else [])
        for n, _ in taken:
            found.files.setdefault(name.strip(), []).append((n, b""))
            left.remove(n)
    return matches


def static_fields(lines: str, found: Gleaned, matches: list[list[str]]) -> dict[str, str]:
    """``field: value`` lines, ``%field%`` being the file name matched for that field."""
    fields = {}
    for line in filter(str.strip, lines.splitlines()):
        name, sep, value = line.partition(":")
        if not sep:
            raise ItemRefused(f"metadata_static : ligne {line!r} sans « : »")
        value = _MATCH.sub(lambda m: _group(matches, m), value.strip())
        fields[name.strip()] = _FIELD.sub(
            lambda m: (found.files.get(m[1]) or [("", b"")])[0][0], value)
    return fields



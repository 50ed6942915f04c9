"""One run of a glaneur: every item of its drop folder (up to ``max_items``) becomes a
document of the Pastell door (``/api/v2``: create, PATCH, files, then ``action_ok``),
and moves to ``directory_send``; an item that fails moves to ``directory_error`` with
``<item>.erreur.txt`` saying why, and the next item is imported all the same. The door
journals each import (action ``importation``) with the folder and file names."""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass, field
from typing import Any

import httpx

from bus.glaneur.config import GlaneurSettings
from bus.glaneur.items import Gleaned, ItemRefused, glean, match_files, unzip
from bus.glaneur.sources import Source, open_source, read_tree

IMPORT_HEADER = "X-Glaneur-Import"  # the door journals it with the creation
log = logging.getLogger(__name__)


@dataclass
class RunReport:
    """What a run did: items imported (name -> ``id_d``) and refused (name -> reason)."""

    imported: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)


class DoorRefused(Exception):
    """The Pastell door refused a call of an import."""


async def run_once(settings: GlaneurSettings, api: httpx.AsyncClient) -> RunReport:
    """Glean the folder once (nothing when ``traitement_actif`` is off)."""
    report = RunReport()
    if not settings.traitement_actif:
        return report
    source = await open_source(settings.sftp)
    try:
        for name, files in await _items(settings, source):
            try:
                gleaned = _document(settings, name, await _load(settings, source, name, files))
                report.imported[name] = await import_document(api, settings, gleaned, name)
            except (ItemRefused, DoorRefused) as exc:
                report.refused[name] = str(exc)
                await _refuse(source, settings, name, files, str(exc))
                continue
            for part in files or [name]:
                await source.move(posixpath.join(settings.directory, part),
                                  settings.directory_send)
    finally:
        await source.close()
    return report


async def _items(settings: GlaneurSettings, source: Source) -> list[tuple[str, list[str]]]:
    """The items of the folder: (name, its files): each ZIP file, each sub-folder (its
    files read whole, ``[]`` here), or the groups of loose files (VRAC)."""
    entries = await source.entries(settings.directory)
    files = [n for n, is_dir in entries if not is_dir]
    if settings.type_depot == "VRAC":
        return vrac_items(settings, files)
    if settings.type_depot == "FOLDER":
        return [(n, []) for n, is_dir in entries if is_dir][:settings.max_items]
    return [(n, [n]) for n in files][:settings.max_items]


def vrac_items(settings: GlaneurSettings, names: list[str]) -> list[tuple[str, list[str]]]:
    """Loose files: each file matching the first pattern line starts an item, with the
    files the other lines match for it."""
    items = []
    left = sorted(names)
    first, *others = list(filter(str.strip, settings.file_preg_match.splitlines())) or [""]
    while left and len(items) < settings.max_items:
        lead = Gleaned("")
        captures = match_files(first, left, lead)
        if not lead.files:
            break
        head = lead.file_names[0]  # the first match: the captures are its own
        found = Gleaned("")
        match_files("\n".join(others), [n for n in left if n != head], found, captures)
        members = [head, *found.file_names]
        items.append((head, members))
        left = [n for n in left if n not in members]
    return items


async def _load(settings: GlaneurSettings, source: Source, name: str, members: list[str]
                ) -> dict[str, bytes]:
    """The item's files: a sub-folder's tree (FOLDER), else its listed files."""
    if settings.type_depot == "FOLDER":
        return await read_tree(source, posixpath.join(settings.directory, name))
    return {n: await source.read(posixpath.join(settings.directory, n)) for n in members}


def _document(settings: GlaneurSettings, name: str, files: dict[str, bytes]) -> Gleaned:
    if settings.type_depot == "ZIP":
        return glean(settings, unzip(files[name], name))
    return glean(settings, files)


async def _refuse(source: Source, settings: GlaneurSettings, name: str, files: list[str],
                  reason: str) -> None:
    log.warning("glaneur %s: %s refused: %s", settings.name, name, reason)
    for part in files or [name]:
        moved = await source.move(posixpath.join(settings.directory, part),
                                  settings.directory_error)
    await source.write(f"{moved}.erreur.txt", f"{reason}\n".encode())


async def _call(api: httpx.AsyncClient, method: str, path: str, expect: int,
                **kwargs: Any) -> Any:
    got = await api.request(method, path, **kwargs)
    if got.status_code != expect:
        try:
            why = got.json()["error-message"]
        except (ValueError, KeyError, TypeError):
            why = got.text[:500]
        raise DoorRefused(f"{method} {path} : {got.status_code} {why}")
    return got.json() if got.content else None


async def import_document(api: httpx.AsyncClient, settings: GlaneurSettings,
                          gleaned: Gleaned, name: str) -> str:
    """Create the document, set its fields, post its files, trigger ``action_ok``: its
    ``id_d``."""
    where = (f"{settings.sftp.host}:" if settings.sftp else "") + settings.directory
    note = f"{where}/{name} ({', '.join(gleaned.file_names)})"
    base = f"/api/v2/entite/{settings.id_e}/document"
    created = await _call(api, "POST", base, 201, data={"type": gleaned.flux},
                          headers={IMPORT_HEADER: note.encode("utf-8").decode("latin-1")})
    doc = f"{base}/{created['id_d']}"
    try:
        return await _fill(api, settings, gleaned, doc, created["id_d"])
    except DoorRefused as exc:  # the item goes to the error folder, its draft is deleted
        await api.delete(doc)
        raise DoorRefused(f"{exc} (document {created['id_d']} supprimé)") from None


async def _fill(api: httpx.AsyncClient, settings: GlaneurSettings, gleaned: Gleaned,
                doc: str, id_d: str) -> str:
    form_ok = 0
    if gleaned.fields:
        form_ok = (await _call(api, "PATCH", doc, 200, data=gleaned.fields))["formulaire_ok"]
    for field_name, found in gleaned.files.items():
        for num, (file_name, content) in enumerate(found):
            form_ok = (await _call(api, "POST", f"{doc}/file/{field_name}/{num}", 201,
                                   data={"file_name": file_name},
                                   files={"file_content": (file_name, content)})
                       )["formulaire_ok"]
    if settings.action_ok and (form_ok or settings.force_action_ok):
        await _call(api, "POST", f"{doc}/action/{settings.action_ok}", 201)
    elif settings.action_ok:
        raise DoorRefused(f"formulaire incomplet, « {settings.action_ok} » non déclenchée "
                          f"({settings.action_ko})")
    return id_d

"""Readers of the containers and records a document's export holds besides partner XML:
JSON records (demat-bus's own, checked against their models), tar/gzip and ZIP archives
(each member inspected), OpenPGP messages (the ENSAP package), and PDF structure.

``valid`` is the verdict of the deepest check the kind allows, and ``messages`` says
which: a model for demat-bus records, every member for an archive, the packet
sequence for an OpenPGP message, a full parse for a PDF, well-formedness for JSON
that has no published model.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from bus.audit.inspect.report import Report
from schemas.envelope import Envelope
from schemas.messages import DocumentState

MemberReader = Callable[[str, bytes], Awaitable[Report]]
MAX_MEMBERS = 200
GZIP_MAGIC, ZIP_MAGIC = b"\x1f\x8b", b"PK\x03\x04"
PGP_ARMOR = b"-----BEGIN PGP MESSAGE-----"
# OpenPGP packet tags (RFC 9580 §5): public-key encrypted session key, symmetric one,
# then the encrypted data (SEIPD, or the legacy symmetrically encrypted data)
SESSION_KEY_TAGS, DATA_TAGS = {1, 3}, {9, 18, 20}


def is_openpgp(data: bytes) -> bool:
    """Whether ``data`` starts like an OpenPGP message (armoured, or a session key packet)."""
    if data.lstrip().startswith(PGP_ARMOR):
        return True
    return bool(data) and data[0] & 0x80 != 0 and _tag(data[0]) in SESSION_KEY_TAGS


# --- JSON -------------------------------------------------------------------------------


RECORDS: dict[str, tuple[str, type[BaseModel] | None]] = {
    "state.json": ("demat.state", DocumentState),
    "envelope.json": ("demat.envelope", Envelope),
}


def read_json(report: Report, data: bytes) -> None:
    """A JSON file: demat-bus records against their model, other JSON well-formed."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        report.kind, report.standard, report.valid = "json", "JSON", False
        report.note(f"not well-formed JSON: {exc}")
        return
    name = report.file.replace("\\", "/").rsplit("/", 1)[-1]
    kind, model = RECORDS.get(name, (None, None))
    if model is not None and isinstance(value, dict):
        report.kind, report.standard = kind or "json", f"demat-bus {name}"
        try:
            model.model_validate(value)
        except ValidationError as exc:
            report.valid = False
            report.messages += [f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                for e in exc.errors()[:20]]
            return
        report.valid = True
        report.note(f"checked against demat-bus's {model.__name__} model")
        return
    _plain_json(report, name, value)


def _plain_json(report: Report, name: str, value: Any) -> None:
    if name == "manifest.json" and isinstance(value, dict) and "files" in value:
        report.kind, report.standard = "demat.manifest", "demat-bus export manifest"
        report.fields = {"document": value.get("document"), "state": value.get("state"),
                         "files": len(value.get("files") or [])}
    elif name == "journal.json" and isinstance(value, list):
        report.kind, report.standard = "demat.journal", "demat-bus document journal"
        report.fields = {"events": len(value)}
    else:
        report.kind, report.standard = "json", "JSON"
    report.valid = True
    report.note("well-formed JSON (no published schema for this record)")


# --- archives ---------------------------------------------------------------------------


async def read_archive(report: Report, data: bytes, inspect_member: MemberReader) -> None:
    """A tar.gz, gzip or ZIP file: valid when it opens and every member is valid."""
    try:
        members = _members(data)
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as exc:
        report.kind, report.valid = "archive", False
        report.note(f"the archive cannot be opened: {exc}")
        return
    kind, standard = _archive_kind(data, [name for name, _ in members])
    report.kind, report.standard = kind, standard
    listed = []
    valid = True
    for name, content in members[:MAX_MEMBERS]:
        member = await inspect_member(f"{report.file}!{name}", content)
        listed.append({"name": name, "kind": member.kind, "valid": member.valid})
        if member.valid is False or member.kind == "unknown":
            valid = False
            report.messages += [f"{name}: {m}" for m in member.messages[:5]]
    report.fields = {"members": listed}
    report.valid = valid
    report.note(f"{len(members)} member(s), each inspected")


def _members(data: bytes) -> list[tuple[str, bytes]]:
    if data.startswith(ZIP_MAGIC):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return [(i.filename, archive.read(i)) for i in archive.infolist() if not i.is_dir()]
    raw = gzip.decompress(data)
    try:
        with tarfile.open(fileobj=io.BytesIO(raw)) as archive:
            return [(m.name, archive.extractfile(m).read())  # type: ignore[union-attr]
                    for m in archive.getmembers() if m.isfile()]
    except tarfile.ReadError:
        return [("(gzip content)", raw)]


def _archive_kind(data: bytes, names: list[str]) -> tuple[str, str]:
    if data.startswith(ZIP_MAGIC):
        return "archive.zip", "ZIP archive"
    if any(n.rsplit("/", 1)[-1].startswith("EACT--") for n in names):
        return "actes.archive", "ACTES transmission archive (tar.gz: envelope, form, files)"
    if "index.xml" in names:
        return "ensap.package", "ENSAP package (index.xml and PDFs, tar.gz)"
    return "archive.tar.gz", "tar.gz archive"


# --- OpenPGP ----------------------------------------------------------------------------


def read_openpgp(report: Report, data: bytes) -> None:
    """An OpenPGP message: its packets read to the end (the content stays encrypted)."""
    report.kind, report.standard = "openpgp.message", "OpenPGP encrypted message (RFC 9580)"
    if data.lstrip().startswith(PGP_ARMOR):
        report.valid = True
        report.note("ASCII-armoured OpenPGP message: packets not read")
        return
    try:
        packets = _packets(data)
    except ValueError as exc:
        report.valid = False
        report.note(f"broken OpenPGP packet sequence: {exc}")
        return
    tags = [tag for tag, _ in packets]
    report.fields = {"packets": tags, "recipients": [
        body[1:9].hex().upper() for tag, body in packets if tag == 1 and len(body) > 9]}
    report.valid = bool(SESSION_KEY_TAGS & set(tags)) and bool(DATA_TAGS & set(tags))
    report.note("packet sequence read to the end; the content is encrypted to the "
                "recipient (ENSAP's key) and not read here" if report.valid else
                "no session key or no encrypted data packet")


def _tag(first: int) -> int:
    return first & 0x3F if first & 0x40 else (first >> 2) & 0x0F


def _packets(data: bytes) -> list[tuple[int, bytes]]:
    """(tag, body) of each packet (new and old formats; partial lengths joined)."""
    packets, at = [], 0
    while at < len(data):
        first = data[at]
        if not first & 0x80:
            raise ValueError(f"byte {at}: not a packet header")
        tag, at = _tag(first), at + 1
        if first & 0x40:
            body, at = _new_body(data, at)
        else:
            body, at = _old_body(data, at, first & 0x03)
        packets.append((tag, body))
    return packets


def _new_body(data: bytes, at: int) -> tuple[bytes, int]:
    chunks = []
    while True:
        if at >= len(data):
            raise ValueError("truncated length")
        octet = data[at]
        if octet < 192:
            size, at = octet, at + 1
        elif octet < 224:
            size, at = ((octet - 192) << 8) + data[at + 1] + 192, at + 2
        elif octet == 255:
            size, at = int.from_bytes(data[at + 1:at + 5], "big"), at + 5
        else:  # partial body length: more chunks follow
            size = 1 << (octet & 0x1F)
            chunks.append(_take(data, at + 1, size))
            at += 1 + size
            continue
        chunks.append(_take(data, at, size))
        return b"".join(chunks), at + size


def _old_body(data: bytes, at: int, length_type: int) -> tuple[bytes, int]:
    if length_type == 3:  # indeterminate: to the end
        return data[at:], len(data)
    width = (1, 2, 4)[length_type]
    size = int.from_bytes(data[at:at + width], "big")
    return _take(data, at + width, size), at + width + size


def _take(data: bytes, at: int, size: int) -> bytes:
    if at + size > len(data):
        raise ValueError(f"packet at byte {at} runs past the end")
    return data[at:at + size]


# --- text -------------------------------------------------------------------------------


def read_text(report: Report, data: bytes) -> bool:
    """Plain UTF-8 text (a note, a CSV): ``kind: text``; False when ``data`` is not text."""
    if b"\x00" in data:
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if any(ord(c) < 32 and c not in "\t\r\n\f" for c in text):
        return False
    report.kind, report.standard, report.valid = "text", "plain text (UTF-8)", True
    report.fields = {"lines": text.count("\n") + (not text.endswith("\n"))}
    report.note("readable UTF-8 text (no schema for plain text)")
    return True


# --- PDF --------------------------------------------------------------------------------


def check_pdf_structure(report: Report, data: bytes) -> None:
    """``valid``: the PDF ends as the format requires (``startxref`` inside the file, then
    ``%%EOF``) and parses in full (trailer, cross-references, every page)."""
    tail = data[-2048:]
    start = tail.rfind(b"startxref")
    offset = tail[start + 9:].split(b"%%EOF")[0].strip() if start != -1 else b""
    if b"%%EOF" not in tail or not offset.isdigit() or int(offset) >= len(data):
        report.valid = False
        report.note("the PDF does not end with startxref and %%EOF: it is truncated")
        return
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        pages = [page.mediabox for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        report.valid = False
        report.note(f"the PDF structure is broken: {type(exc).__name__}: {exc}")
        return
    report.valid = bool(pages)
    report.fields.setdefault("pages", len(pages))
    report.note("no schema for a PDF: its structure was read in full (pypdf)"
                if pages else "the PDF has no page")

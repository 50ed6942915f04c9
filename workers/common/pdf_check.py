"""Is a PDF safe to send to the prefecture or to a signatory? Real, unencrypted, passive.

``pdf_problem`` reads the file with pypdf and answers why it is refused, or ``None``:
data before ``%PDF-`` or after the last ``%%EOF`` (a ZIP, HTML or other polyglot),
an unreadable or encrypted file, JavaScript, launch actions, embedded files or file
attachments (executables travel that way), rich media and XFA forms.
"""

from __future__ import annotations

import re
from typing import IO, Any

from pypdf import PdfReader
from pypdf.errors import PyPdfError
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

HEAD, TAIL = 1024, 64 * 1024
MAX_OBJECTS = 200_000
_HTML = re.compile(rb"<\s*(html|script|body|iframe|svg)\b", re.IGNORECASE)
# keys and values whose presence makes a PDF active, with the reason given
_ACTIVE_KEYS = {"/JS": "JavaScript", "/JavaScript": "JavaScript",
                "/EmbeddedFiles": "embedded files", "/EmbeddedFile": "an embedded file",
                "/RichMedia": "rich media (Flash/video) content", "/XFA": "an XFA form"}
_ACTIVE_VALUES = {("/S", "/JavaScript"): "JavaScript", ("/S", "/Launch"): "a launch action",
                  ("/S", "/ImportData"): "an import-data action",
                  ("/Type", "/EmbeddedFile"): "an embedded file",
                  ("/Subtype", "/FileAttachment"): "a file attachment",
                  ("/Subtype", "/RichMedia"): "rich media (Flash/video) content"}


def pdf_problem(fh: IO[bytes], size: int) -> str | None:
    """Why the seekable PDF ``fh`` of ``size`` bytes is refused, or ``None`` when it is not."""
    problem = _frame_problem(fh, size)
    if problem:
        return problem
    fh.seek(0)
    try:
        reader = PdfReader(fh, strict=False)
        if reader.is_encrypted:
            return "the PDF is encrypted (password or permissions): send it unencrypted"
        return _objects_problem(reader)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError,
            RecursionError) as exc:
        return f"not a readable PDF: {type(exc).__name__}: {exc}"


def _frame_problem(fh: IO[bytes], size: int) -> str | None:
    fh.seek(0)
    head = fh.read(HEAD)
    if not head.startswith(b"%PDF-"):
        return "data before %PDF- (a polyglot file, e.g. ZIP or HTML then PDF)"
    if _HTML.search(head):
        return "HTML markup in the PDF header (a PDF/HTML polyglot)"
    fh.seek(max(0, size - TAIL))
    tail = fh.read(TAIL)
    end = tail.rfind(b"%%EOF")
    if end < 0:
        return "no %%EOF marker at the end: truncated or not a PDF"
    if tail[end + 5:].strip(b"\r\n\t \x00\x0c"):
        return "data after the last %%EOF (a polyglot file, e.g. PDF then ZIP)"
    return None


def _objects_problem(reader: PdfReader) -> str | None:
    """Walk every object of the file (cross-reference tables and object streams)."""
    numbers = [(num, gen) for gen, table in reader.xref.items() for num in table]
    numbers += [(num, 0) for num in reader.xref_objStm]
    if len(numbers) > MAX_OBJECTS:
        return f"the PDF has {len(numbers)} objects, more than {MAX_OBJECTS}"
    for found in (_active(reader.trailer), *(_object_problem(reader, n, g) for n, g in numbers)):
        if found:
            return f"the PDF contains {found}"
    return None


def _object_problem(reader: PdfReader, num: int, gen: int) -> str | None:
    obj = reader.get_object(IndirectObject(num, gen, reader))
    reader.resolved_objects.clear()  # one object at a time: stream data is not kept
    return _active(obj)


def _active(obj: Any) -> str | None:
    if isinstance(obj, ArrayObject):
        return next((f for f in map(_active, obj) if f), None)
    if not isinstance(obj, DictionaryObject):
        return None
    for key, value in obj.items():
        if key in _ACTIVE_KEYS:
            return _ACTIVE_KEYS[key]
        if isinstance(value, NameObject) and (key, value) in _ACTIVE_VALUES:
            return _ACTIVE_VALUES[(key, value)]
        if isinstance(value, DictionaryObject | ArrayObject):  # direct sub-objects
            found = _active(value)
            if found:
                return found
    return None

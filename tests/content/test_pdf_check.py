"""PDFs bound for the prefecture or a signatory: real, unencrypted, passive; every
hostile variant is refused with its reason."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from pypdf import PdfWriter
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    TextStringObject,
)

from workers.common.demo import minimal_pdf
from workers.common.pdf_check import pdf_problem

GOOD = minimal_pdf("Deliberation 2026-12")


def _written(change: Callable[[PdfWriter], None]) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _catalog(key: str, value: DictionaryObject) -> Callable[[PdfWriter], None]:
    def change(writer: PdfWriter) -> None:
        writer._root_object[NameObject(key)] = writer._add_object(value)
    return change


def _action(kind: str, **extra: object) -> DictionaryObject:
    return DictionaryObject({NameObject("/S"): NameObject(kind),
                             **{NameObject(f"/{k}"): v for k, v in extra.items()}})


def _page_annotation(annot: DictionaryObject) -> Callable[[PdfWriter], None]:
    def change(writer: PdfWriter) -> None:
        writer.pages[0][NameObject("/Annots")] = ArrayObject([writer._add_object(annot)])
    return change


def _names_js(writer: PdfWriter) -> None:
    js = _action("/JavaScript", JS=TextStringObject("app.alert(1)"))
    tree = DictionaryObject({NameObject("/Names"): ArrayObject(
        [TextStringObject("a"), writer._add_object(js)])})
    writer._root_object[NameObject("/Names")] = DictionaryObject(
        {NameObject("/JavaScript"): writer._add_object(tree)})


def _page_aa(writer: PdfWriter) -> None:
    writer.pages[0][NameObject("/AA")] = DictionaryObject(
        {NameObject("/O"): _action("/JavaScript", JS=TextStringObject("app.alert(2)"))})


def _xfa(writer: PdfWriter) -> None:
    writer._root_object[NameObject("/AcroForm")] = DictionaryObject(
        {NameObject("/Fields"): ArrayObject(), NameObject("/XFA"): TextStringObject("<xdp/>")})


ANNOT = {NameObject("/Type"): NameObject("/Annot"),
         NameObject("/Rect"): ArrayObject([NumberObject(0)] * 4)}

# (name, file, the reason's words)
HOSTILE = [
    ("open-action-js", _written(_catalog("/OpenAction", _action(
        "/JavaScript", JS=TextStringObject("app.alert(1)")))), "JavaScript"),
    ("names-javascript", _written(_names_js), "JavaScript"),
    ("page-additional-action-js", _written(_page_aa), "JavaScript"),
    ("launch-action", _written(_catalog("/OpenAction", _action(
        "/Launch", F=TextStringObject("cmd.exe")))), "launch action"),
    ("import-data", _written(_catalog("/OpenAction", _action(
        "/ImportData", F=TextStringObject("x.fdf")))), "import-data action"),
    ("embedded-exe", _written(lambda w: w.add_attachment("setup.exe", b"MZ\x90\x00" * 64)),
     "embedded file"),
    ("file-attachment-annot", _written(_page_annotation(DictionaryObject(
        {**ANNOT, NameObject("/Subtype"): NameObject("/FileAttachment")}))), "file attachment"),
    ("link-js", _written(_page_annotation(DictionaryObject(
        {**ANNOT, NameObject("/Subtype"): NameObject("/Link"),
         NameObject("/A"): _action("/JavaScript", JS=TextStringObject("x"))}))), "JavaScript"),
    ("rich-media", _written(_page_annotation(DictionaryObject(
        {**ANNOT, NameObject("/Subtype"): NameObject("/RichMedia")}))), "rich media"),
    ("xfa-form", _written(_xfa), "XFA form"),
    ("encrypted-user-password", _written(lambda w: w.encrypt("secret")), "encrypted"),
    ("encrypted-owner-only", _written(lambda w: w.encrypt("", "owner")), "encrypted"),
    ("zip-then-pdf", b"PK\x03\x04" + b"\x00" * 26 + GOOD, "data before %PDF-"),
    ("html-then-pdf", b"<html><script>alert(1)</script></html>\n" + GOOD, "data before %PDF-"),
    ("html-in-header", GOOD[:9] + b"%<html><body onload=alert(1)>\n" + GOOD[9:],
     "HTML markup"),
    ("pdf-then-zip", GOOD + b"PK\x05\x06" + b"\x00" * 18, "data after the last %%EOF"),
    ("pdf-then-html", GOOD + b"<script>alert(1)</script>", "polyglot"),
    ("pdf-then-zip-far", GOOD.replace(b"endobj", b"endobj\n%" + b"x" * 2000, 1)
     + b"PK\x05\x06" + b"\x00" * 18, "data after the last %%EOF"),
    ("truncated", GOOD[: len(GOOD) // 2], "no %%EOF"),
    ("header-only", b"%PDF-1.7\n%%EOF\n", "not a readable PDF"),
    ("garbage-body", b"%PDF-1.4\n" + b"\xff" * 500 + b"\n%%EOF", "not a readable PDF"),
]


@pytest.mark.parametrize(("name", "data", "reason"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_pdf_refused(name: str, data: bytes, reason: str) -> None:
    problem = pdf_problem(io.BytesIO(data), len(data))
    assert problem is not None and reason in problem, problem


@pytest.mark.parametrize("data", [GOOD, _written(lambda w: None)])
def test_plain_pdf_accepted(data: bytes) -> None:
    assert pdf_problem(io.BytesIO(data), len(data)) is None


def test_trailing_newlines_accepted() -> None:
    data = GOOD + b"\r\n\n"
    assert pdf_problem(io.BytesIO(data), len(data)) is None

"""Flow ``document``: the tenant's accepted media types, and names agreeing with content."""

from __future__ import annotations

import pytest

from bus.intake import SubmissionError
from schemas.envelope import Envelope, FileRef
from workers.common.document_types import DEFAULT_MEDIA_TYPES, accepted_types, check_types

TENANT = "216900910"


def _env(name: str, media_type: str) -> Envelope:
    return Envelope(tenant=TENANT, flow="document", metadata={"title": "t"}, files=[
        FileRef(sha256="a" * 64, size=10, name="ok.pdf", media_type="application/pdf"),
        FileRef(sha256="b" * 64, size=10, name=name, media_type=media_type)])


# (file name, sniffed media type, field named, words of the reason)
HOSTILE = [
    ("facture.pdf", "application/zip", "files[1].media_type", "is application/zip"),
    ("photo.png", "application/pdf", "files[1].name", "ends in '.png'"),
    ("scan.jpg", "image/png", "files[1].name", "content is image/png"),
    ("note.pdf", "text/plain", "files[1].name", "ends in '.pdf'"),
    ("annexe.txt", "application/xml", "files[1].name", "ends in '.txt'"),
    ("rapport", "application/pdf", "files[1].name", "no extension"),
    ("rapport.pdf.exe", "application/pdf", "files[1].name", "ends in '.exe'"),
    ("setup.exe", "application/octet-stream", "files[1].media_type", "octet-stream"),
    ("macro.doc", "application/x-ole-storage", "files[1].media_type", "x-ole-storage"),
    ("data.json", "application/json", "files[1].media_type", "accepts only"),
    ("archive.gz", "application/gzip", "files[1].media_type", "accepts only"),
]


@pytest.mark.parametrize(("name", "media_type", "field", "reason"), HOSTILE)
def test_refused_naming_the_file(name: str, media_type: str, field: str, reason: str) -> None:
    with pytest.raises(SubmissionError) as caught:
        check_types(_env(name, media_type), DEFAULT_MEDIA_TYPES)
    assert caught.value.field == field
    assert reason in str(caught.value) and repr(name) in str(caught.value)


@pytest.mark.parametrize(("name", "media_type"), [
    ("a.PDF", "application/pdf"), ("b.jpeg", "image/jpeg"), ("c.tif", "image/tiff"),
    ("d.csv", "text/plain"), ("e.xml", "application/xml")])
def test_accepted(name: str, media_type: str) -> None:
    check_types(_env(name, media_type), DEFAULT_MEDIA_TYPES)


def test_tenant_setting_narrows_and_widens() -> None:
    only_pdf = accepted_types({"document": {"media_types": ["application/pdf"]}})
    with pytest.raises(SubmissionError, match="accepts only application/pdf"):
        check_types(_env("n.txt", "text/plain"), only_pdf)
    with_zip = accepted_types({"document": {"media_types": ["application/pdf",
                                                            "application/zip"]}})
    check_types(_env("lot.zip", "application/zip"), with_zip)
    assert accepted_types({}) == DEFAULT_MEDIA_TYPES

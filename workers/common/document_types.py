"""Intake check of the generic flow ``document``: the media types its tenant accepts, and
file names that agree with the content.

Tenant setting ``document.media_types`` lists the accepted types (default: PDF, PNG,
JPEG, TIFF, XML, plain text). The media type of a file is sniffed from its content
when it is stored (``bus.sniff``; the ``validate`` step checks it again against the
stored bytes), and its name's extension must be one of that type's: a ZIP named
``facture.pdf`` or a PDF named ``photo.png`` is refused, naming the file.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from bus.intake import SubmissionError
from bus.plugins import REGISTRY
from schemas.envelope import Envelope

DEFAULT_MEDIA_TYPES = ("application/pdf", "image/png", "image/jpeg", "image/tiff",
                       "application/xml", "text/plain")
EXTENSIONS = {
    "application/pdf": (".pdf",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/tiff": (".tif", ".tiff"),
    "application/xml": (".xml",),
    "text/plain": (".txt", ".csv", ".md", ".text"),
    "application/json": (".json",),
    "application/zip": (".zip",),
    "application/gzip": (".gz", ".tgz"),
}


def accepted_types(settings: dict[str, Any]) -> tuple[str, ...]:
    """The media types a tenant accepts in the flow ``document``."""
    configured = (settings.get("document") or {}).get("media_types")
    return tuple(configured) if configured else DEFAULT_MEDIA_TYPES


def check_types(env: Envelope, accepted: tuple[str, ...]) -> None:
    """``SubmissionError`` naming the first file of a refused type or a lying name."""
    for i, ref in enumerate(env.files):
        if ref.media_type not in accepted:
            raise SubmissionError(f"files[{i}].media_type", f"file {ref.name!r} is "
                                  f"{ref.media_type}: tenant {env.tenant} accepts only "
                                  f"{', '.join(accepted)} in flow {env.flow!r}")
        suffix = PurePosixPath(ref.name).suffix.lower()
        allowed = EXTENSIONS.get(ref.media_type, ())
        if suffix not in allowed:
            said = f"its name ends in {suffix!r}" if suffix else "its name has no extension"
            raise SubmissionError(f"files[{i}].name", f"file {ref.name!r}: {said} but its "
                                  f"content is {ref.media_type} (expected "
                                  f"{' or '.join(allowed) or 'no other type'})")


@REGISTRY.flow_check("document")
async def check_document(runtime: Any, env: Envelope, *, at_intake: bool = True) -> None:
    """Intake and validate step: accepted media types, names agreeing with the content."""
    check_types(env, accepted_types(runtime.tenants.get(env.tenant).settings))

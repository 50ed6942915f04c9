"""Per-flow limits and metadata bounds, checked before any upload (``check_envelope``,
which the SDK runs on its draft), and the API's metadata parsing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bus.broker import encode
from bus.flows import FlowRegistry
from bus.intake import (
    SubmissionError,
    check_envelope,
    check_file_limits,
    check_json_depth,
    check_metadata_bounds,
    loads_metadata,
)
from bus.tenants import Tenant, TenantRegistry
from bus.uploads import UploadError, Uploads
from schemas.envelope import Envelope, FileRef
from schemas.messages import SubmitMessage

FLOWS = FlowRegistry.load()
CITY = "216900910"
TENANTS = TenantRegistry([Tenant(siren=CITY, name="Ville", settings={
    "limits": {"document": {"max_file_bytes": 1000, "max_files": 3}}})])
MB = 1024 * 1024


def _deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = {"a": value}
    return value


def _env(flow: str, sizes: list[int], metadata: dict | None = None) -> Envelope:
    names = {"invoice": "f.xml", "helios": "p.xml", "acte": "a.pdf"}
    return Envelope(tenant=CITY, flow=flow, metadata=metadata or {"title": "t"}, files=[
        FileRef(sha256=f"{i:064x}", size=s, name=f"{i}-{names.get(flow, 'd.pdf')}",
                media_type="application/pdf") for i, s in enumerate(sizes)])


# (name, envelope, field named, words of the reason)
HOSTILE = [
    ("invoice-1gb", _env("invoice", [1024 * MB], {}), "files[0]", "at most 33554432 bytes"),
    ("invoice-two-files", _env("invoice", [10, 10], {}), "files", "at most 1"),
    ("helios-600mb", _env("helios", [600 * MB], {}), "files[0]", "at most 157286400"),
    ("acte-total-over-150mb", _env("acte", [100 * MB, 60 * MB], {}), "files",
     "at most 157286400 bytes per document"),
    ("document-tenant-file-bound", _env("document", [1001]), "files[0]", "at most 1000"),
    ("document-tenant-count-bound", _env("document", [1, 1, 1, 1]), "files", "at most 3"),
    ("metadata-deep-30", _env("document", [1], {"title": "t", "x": _deep(30)}), "metadata",
     "nested deeper than 20"),
    ("metadata-deep-100000", _env("document", [1], {"title": "t", "x": _deep(100_000)}),
     "metadata", "nested deeper than 20"),
    ("metadata-deep-list", _env("document", [1], {"title": "t", "x": json.loads(
        "[" * 25 + "]" * 25)}), "metadata", "nested deeper"),
    ("metadata-300kb", _env("document", [1], {"title": "t", "description": "é" * 150_000}),
     "metadata", "more than the 262144 allowed"),
    ("invoice-metadata-70kb", _env("invoice", [10], {"comment": "x" * 70_000}), "metadata",
     "more than the 65536 allowed"),
]


@pytest.mark.parametrize(("name", "env", "field", "reason"), HOSTILE,
                         ids=[h[0] for h in HOSTILE])
def test_refused_before_upload(name: str, env: Envelope, field: str, reason: str) -> None:
    with pytest.raises(SubmissionError) as caught:
        check_envelope(env, FLOWS, TENANTS)
    assert caught.value.field == field and reason in str(caught.value), str(caught.value)


def test_the_largest_envelope_allowed_fits_a_broker_message() -> None:
    """Limits checked before upload mean no MessageSizeTooLarge once files are stored:
    100 files with 255-byte names and 256 KiB of metadata JSON (control characters,
    escaped six-fold, counted as encoded) stay under Kafka's default 1 MiB."""
    files = [FileRef(sha256=f"{i:064x}", size=1, name=f"{i:03d}" + "é" * 126,
                     media_type="application/pdf") for i in range(100)]
    meta = {"title": "t", "description": "\x01" * (256 * 1024 // 6 - 40)}
    env = Envelope(tenant=CITY, flow="document", metadata=meta, files=files)
    limits = FLOWS.get("document").limits
    check_metadata_bounds(env.metadata, limits)
    check_file_limits(env, limits)
    assert len(encode(SubmitMessage(envelope=env))) < 1024 * 1024
    meta["description"] += "\x01" * 100
    with pytest.raises(SubmissionError, match="more than the 262144 allowed"):
        check_metadata_bounds(meta, limits)


def test_tenant_cannot_loosen_the_flow() -> None:
    loose = TenantRegistry([Tenant(siren=CITY, name="V", settings={
        "limits": {"invoice": {"max_file_bytes": 10**12}}})])
    with pytest.raises(SubmissionError, match="at most 33554432"):
        check_envelope(_env("invoice", [40 * MB], {}), FLOWS, loose)


def test_within_bounds_accepted() -> None:
    check_envelope(_env("document", [1000, 1, 1]), FLOWS, TENANTS)


# (name, text, words of the refusal): what the API's and CLI's metadata parsing refuses
JSON_HOSTILE = [
    ("deep-array-100000", "[" * 100_000 + "]" * 100_000, "nested deeper than 20"),
    ("deep-object-100000", '{"a":' * 100_000 + "1" + "}" * 100_000, "nested deeper than 20"),
    ("deep-25", json.dumps(_deep(25)), "nested deeper than 20"),
    ("not-an-object", "[1, 2]", "must be a JSON object"),
    ("malformed", "{title: oops", "malformed JSON"),
    ("not-utf8", b"\xff\xfe{", "malformed JSON"),
]


@pytest.mark.parametrize(("name", "text", "reason"), JSON_HOSTILE,
                         ids=[h[0] for h in JSON_HOSTILE])
def test_metadata_json_refused(name: str, text: str | bytes, reason: str) -> None:
    with pytest.raises(SubmissionError) as caught:
        loads_metadata(text)
    assert caught.value.field == "metadata" and reason in str(caught.value)


def test_depth_walk_takes_flat_and_twenty_levels() -> None:
    check_json_depth(_deep(19) | {"b": [1, 2, {"c": None}]})
    assert loads_metadata('{"title": "t", "tags": ["a"]}') == {"title": "t", "tags": ["a"]}


class _Records:
    """The one object-store call ``Uploads.start`` makes."""

    def __init__(self) -> None:
        self.saved: dict[str, Any] = {}

    def put_json(self, key: str, value: Any) -> None:
        self.saved[key] = value


@pytest.mark.parametrize(("size", "flow_limit", "ok"), [
    (100, None, True), (10**9, None, False), (100, 50, False), (50, 50, True)])
def test_upload_start_bounded_by_the_flow(size: int, flow_limit: int | None, ok: bool) -> None:
    uploads = Uploads(_Records(), max_size=1000)  # type: ignore[arg-type]
    if ok:
        assert uploads.start(CITY, "a.pdf", size, max_size=flow_limit).size == size
    else:
        with pytest.raises(UploadError, match="size: between 1 and"):
            uploads.start(CITY, "a.pdf", size, max_size=flow_limit)

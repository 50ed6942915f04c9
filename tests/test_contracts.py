"""Envelope contracts: identifiers, SIREN, media types, flow definitions."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from bus.sniff import sniff
from schemas.envelope import Envelope, FileRef
from schemas.flow import FlowDefinition
from schemas.ids import id_timestamp_ms, new_id
from schemas.siren import check_siren

SHA = "a" * 64


def test_ids_are_time_ordered_uuid7() -> None:
    first = new_id()
    time.sleep(0.002)
    second = new_id()
    assert first < second
    assert first[14] == "7"
    assert abs(id_timestamp_ms(second) - time.time() * 1000) < 1000


@pytest.mark.parametrize("value", ["216900910", "214502494", "2169 00910"])
def test_valid_siren(value: str) -> None:
    assert check_siren(value) == value.replace(" ", "")


@pytest.mark.parametrize(("value", "why"), [
    ("216900911", "checksum"), ("21690091", "9 digits"), ("21690091A", "9 digits")])
def test_invalid_siren_says_why(value: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        check_siren(value)


def test_envelope_rejects_bad_siren_naming_field() -> None:
    with pytest.raises(ValidationError) as err:
        Envelope(tenant="123456789", flow="document",
                 files=[FileRef(sha256=SHA, size=1, media_type="text/plain", name="a")])
    assert err.value.errors()[0]["loc"] == ("tenant",)


def test_fingerprint_depends_on_content_not_identity() -> None:
    f = [FileRef(sha256=SHA, size=1, media_type="text/plain", name="a")]
    a = Envelope(tenant="216900910", flow="document", metadata={"title": "x"}, files=f)
    b = Envelope(tenant="216900910", flow="document", metadata={"title": "x"}, files=f)
    c = Envelope(tenant="216900910", flow="document", metadata={"title": "y"}, files=f)
    assert a.id != b.id
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


@pytest.mark.parametrize(("head", "media"), [
    (b"%PDF-1.7\n", "application/pdf"), (b"<?xml version='1.0'?><a/>", "application/xml"),
    (b"PK\x03\x04rest", "application/zip"), (b"hello\n", "text/plain"),
    (b"\x00\x01\x02\xff", "application/octet-stream"), (b'{"a": 1}', "application/json"),
    ("accentué".encode()[:-1], "text/plain")])
def test_sniff(head: bytes, media: str) -> None:
    assert sniff(head) == media


def _flow(steps: list[dict]) -> dict:
    return {"name": "f", "metadata_model": "document", "steps": steps}


def test_flow_cycle_is_refused_naming_steps() -> None:
    with pytest.raises(ValidationError, match="cycle: a -> b -> a"):
        FlowDefinition.model_validate(_flow([
            {"name": "a", "kind": "validate", "next": "b"},
            {"name": "b", "kind": "deposit", "next": "a"}]))


def test_flow_unknown_next_step() -> None:
    with pytest.raises(ValidationError, match="next step 'zz' is unknown"):
        FlowDefinition.model_validate(_flow([{"name": "a", "kind": "validate", "next": "zz"}]))


def test_flow_successors_follow_next_then_order() -> None:
    flow = FlowDefinition.model_validate(_flow([
        {"name": "a", "kind": "validate", "next": "c"},
        {"name": "b", "kind": "deposit"},
        {"name": "c", "kind": "deposit"}]))
    assert [flow.successor("a"), flow.successor("b"), flow.successor("c")] == ["c", "c", None]


def test_retry_delay_grows_and_is_capped() -> None:
    flow = FlowDefinition.model_validate(_flow([
        {"name": "a", "kind": "validate",
         "retry": {"backoff_seconds": 1, "max_delay_seconds": 5, "jitter": 0}}]))
    policy = flow.step("a").retry
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]

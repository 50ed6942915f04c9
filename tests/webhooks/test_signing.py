"""Webhook signatures and the receivers' check (``bus.webhooks.signing``), and which
journal events make which webhook events (``bus.webhooks.events``)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from bus.webhooks.delivery import RetryPolicy, WebhookDelivery
from bus.webhooks.events import check_patterns, matches, payload, webhook_types
from bus.webhooks.signing import WebhookVerificationError, sign, verify
from schemas.messages import DocState, JournalEvent

SECRET = "whsec_test"
BODY = b'{"id":"d1:3/step.done","type":"step.done"}'


def test_signature_is_hmac_sha256_of_id_timestamp_body() -> None:
    headers = sign(SECRET, "d1:3/step.done", BODY, timestamp=1_700_000_000)
    expected = hmac.new(SECRET.encode(), b"d1:3/step.done.1700000000." + BODY,
                        hashlib.sha256).hexdigest()
    assert headers == {"Webhook-Id": "d1:3/step.done", "Webhook-Timestamp": "1700000000",
                       "Webhook-Signature": f"v1={expected}"}


def test_verify_accepts_a_fresh_genuine_delivery_whatever_the_header_case() -> None:
    headers = {k.lower(): v for k, v in sign(SECRET, "e1", BODY, timestamp=1000).items()}
    assert verify(SECRET, headers, BODY, now=1100) == "e1"


def test_verify_accepts_any_of_several_signatures_during_a_rotation() -> None:
    headers = sign(SECRET, "e1", BODY, timestamp=1000)
    old = sign("whsec_old", "e1", BODY, timestamp=1000)["Webhook-Signature"]
    headers["Webhook-Signature"] = f"{old} {headers['Webhook-Signature']}"
    assert verify(SECRET, headers, BODY, now=1000) == "e1"


@pytest.mark.parametrize("change, why", [
    (lambda h, b: (h, b + b" "), "no valid v1 signature"),
    (lambda h, b: (h, b.replace(b"step.done", b"completed")), "no valid v1 signature"),
    (lambda h, b: (h | {"Webhook-Id": "other"}, b), "no valid v1 signature"),
    (lambda h, b: (h | {"Webhook-Timestamp": "1001"}, b), "no valid v1 signature"),
    (lambda h, b: ({k: v for k, v in h.items() if k != "Webhook-Signature"}, b),
     r"missing header\(s\) Webhook-Signature"),
    (lambda h, b: (h | {"Webhook-Timestamp": "soon"}, b), "is not an integer"),
])
def test_verify_refuses_a_tampered_delivery(change, why: str) -> None:
    headers, body = change(sign(SECRET, "e1", BODY, timestamp=1000), BODY)
    with pytest.raises(WebhookVerificationError, match=why):
        verify(SECRET, headers, body, now=1000)


def test_verify_refuses_another_secret() -> None:
    with pytest.raises(WebhookVerificationError, match="no valid v1"):
        verify("whsec_other", sign(SECRET, "e1", BODY, timestamp=1000), BODY, now=1000)


@pytest.mark.parametrize("now", [1000 + 301, 1000 - 301, 1000 + 86_400])
def test_verify_refuses_a_timestamp_outside_the_window_as_a_replay(now: int) -> None:
    with pytest.raises(WebhookVerificationError, match="outside the 300 s window"):
        verify(SECRET, sign(SECRET, "e1", BODY, timestamp=1000), BODY, now=now)


def test_verify_window_is_inclusive_and_configurable() -> None:
    headers = sign(SECRET, "e1", BODY, timestamp=1000)
    assert verify(SECRET, headers, BODY, now=1300) == "e1"
    with pytest.raises(WebhookVerificationError):
        verify(SECRET, headers, BODY, tolerance_s=60, now=1061)


def _event(kind: str, state: DocState = DocState.RUNNING, **detail) -> JournalEvent:
    return JournalEvent(event_id="doc1:7", doc_id="doc1", seq=7, tenant="216900910",
                        flow="document", type=kind, state=state, step="deposit",
                        at=datetime(2026, 12, 2, 10, 0, tzinfo=UTC), detail=detail)


@pytest.mark.parametrize("kind, detail, types", [
    ("submitted", {}, ["document.submitted"]),
    ("completed", {}, ["document.completed"]),
    ("rejected", {}, ["document.rejected"]),
    ("error", {"dlq_id": "x"}, ["document.error", "dead-letter"]),
    ("step-done", {}, ["step.done"]),
    ("step-done", {"artefacts": [{"name": "ar.xml"}]}, ["step.done", "partner-reply"]),
    ("step-waiting", {"artefacts": [{"name": "ack.xml"}]},
     ["document.waiting", "partner-reply"]),
    ("step-started", {}, []),
    ("step-failed", {}, []),
    ("configuration-changed", {}, []),
])
def test_journal_events_make_webhook_types(kind: str, detail: dict, types: list[str]) -> None:
    assert webhook_types(_event(kind, **detail)) == types


def test_patterns_are_types_or_globs_and_unknown_ones_are_refused() -> None:
    assert check_patterns(["document.*", "step.done"]) == ["document.*", "step.done"]
    assert matches(["document.*"], "document.completed")
    assert not matches(["document.*"], "step.done")
    assert matches(["*"], "dead-letter")
    with pytest.raises(ValueError, match=r"'step\.failed' matches no event type"):
        check_patterns(["step.failed"])
    with pytest.raises(ValueError, match="at least one"):
        check_patterns([])


def test_payload_names_the_event_its_document_and_tenant() -> None:
    body = json.loads(payload(_event("completed", DocState.COMPLETED), "document.completed"))
    assert body["id"] == "doc1:7/document.completed"
    assert (body["type"], body["tenant"], body["document"]) == (
        "document.completed", "216900910", "doc1")
    assert body["occurred_at"] == "2026-12-02T10:00:00+00:00"
    assert body["data"]["state"] == "completed" and body["data"]["journal_type"] == "completed"


def test_retry_policy_backs_off_then_gives_up_on_attempts_or_age() -> None:
    policy = RetryPolicy(backoff_s=(1, 5, 30), max_attempts=4, max_age_s=3600)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 9)] == [1, 5, 30, 30, 30]
    start = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    d = WebhookDelivery(subscription_id="s", tenant="t", event_id="e", event_type="x",
                        document="d", body="{}", attempts=3, first_attempt_at=start)
    assert not policy.gives_up(d, start)
    assert policy.gives_up(d.model_copy(update={"attempts": 4}), start)
    assert policy.gives_up(d, start.replace(hour=11))

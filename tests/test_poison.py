"""What is poison and what is not: the classification every consumer uses, and the
router's transition for a message it could not apply (no I/O)."""

from __future__ import annotations

import httpx
import psycopg
import pytest
import urllib3
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError
from lxml import etree
from minio.error import S3Error

from bus.deadletter import failure_info, is_transient
from bus.delays import DUE, TARGET
from bus.engine import FlowEngine
from bus.flows import FlowRegistry
from bus.services.delays import delay_route
from bus.services.steps import error_info
from bus.tenants import ConnectorConfig, Tenant, TenantRegistry
from schemas.envelope import Envelope, FileRef
from schemas.messages import Accepted, DocState, StepDone


class Unforeseen(Exception):
    """An exception class no service knows."""


def _s3(code: str) -> S3Error:
    return S3Error(None, code, "message", "resource", "request", "host")


@pytest.mark.parametrize("exc", [
    KafkaConnectionError("broker down"), KafkaTimeoutError(), ConnectionResetError(),
    TimeoutError(), psycopg.OperationalError("server closed the connection"),
    urllib3.exceptions.NewConnectionError(None, "refused"), _s3("SlowDown"),
    _s3("ServiceUnavailable"), httpx.ConnectError("refused"),
])
def test_infrastructure_errors_are_transient(exc: Exception) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize("exc", [
    Unforeseen("x"), ValueError("bad"), KeyError("k"), RecursionError(),
    etree.XMLSchemaValidateError("Internal error in XML Schema validation."),
    MessageSizeTooLargeError(), _s3("NoSuchKey"),
])
def test_anything_else_is_the_message_s_failure(exc: Exception) -> None:
    assert not is_transient(exc)


def test_a_cause_that_is_transient_makes_the_error_transient() -> None:
    try:
        try:
            raise ConnectionRefusedError("store down")
        except ConnectionRefusedError as inner:
            raise RuntimeError("upload failed") from inner
    except RuntimeError as exc:
        assert is_transient(exc)


def test_failure_info_names_the_class_and_message_and_is_final() -> None:
    info = failure_info(Unforeseen("nobody saw this coming"))
    assert (info.error_class, info.message, info.retryable) == (
        "Unforeseen", "nobody saw this coming", False)
    assert "Unforeseen" in info.traceback
    assert failure_info(Unforeseen()).message == "Unforeseen raised"


def test_a_step_s_unforeseen_exception_is_not_retried_but_a_blip_is() -> None:
    assert error_info(Unforeseen("bug")).retryable is False
    assert error_info(Unforeseen("bug")).error_class == "Unforeseen"
    assert error_info(ConnectionResetError("reset")).retryable is True


@pytest.fixture()
def engine() -> FlowEngine:
    tenants = TenantRegistry([Tenant(siren="216900910", name="A",
                                     connectors={"ged": ConnectorConfig(type="folder")})])
    return FlowEngine(FlowRegistry.load(), tenants)


def _env() -> Envelope:
    return Envelope(tenant="216900910", flow="document", metadata={"title": "t"},
                    files=[FileRef(sha256="b" * 64, size=3, media_type="text/plain", name="a")])


def test_a_poisoned_new_document_goes_to_error_with_a_dead_letter(engine: FlowEngine) -> None:
    env = _env()
    out = engine.on_poison(None, Accepted(doc_id=env.id, envelope=env),
                           failure_info(Unforeseen("boom")))
    assert out.changed and out.state.state == DocState.ERROR
    assert out.state.error.error_class == "Unforeseen"
    [letter] = out.dead_letters
    assert (letter.doc_id, letter.flow, letter.error.error_class) == (
        env.id, "document", "Unforeseen")
    assert [e.type for e in out.events] == ["error"] and not out.tasks


def test_a_poisoned_running_document_fails_at_its_current_step(engine: FlowEngine) -> None:
    env = _env()
    started = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    task = started.tasks[0]
    out = engine.on_poison(started.state, StepDone(doc_id=env.id, task_id=task.task_id,
                                                   step=task.step),
                           failure_info(Unforeseen("boom")))
    assert out.state.state == DocState.ERROR
    assert out.state.record(task.step).status == "failed"
    assert out.dead_letters[0].step == task.step
    assert out.events[-1].prev_hash == started.events[-1].hash  # the chain goes on


def test_a_poisoned_message_of_a_finished_document_only_dead_letters(
        engine: FlowEngine) -> None:
    env = _env()
    done = engine.on_accepted(None, Accepted(doc_id=env.id, envelope=env))
    done.state.state = DocState.COMPLETED
    out = engine.on_poison(done.state, Accepted(doc_id=env.id, envelope=env),
                           failure_info(Unforeseen("late")))
    assert not out.changed and out.state.state == DocState.COMPLETED
    assert out.dead_letters[0].error.error_class == "Unforeseen" and not out.events


def _delayed(headers: list[tuple[str, bytes]]) -> ConsumerRecord:
    return ConsumerRecord(topic="demat.delay.1s", partition=0, offset=0, timestamp=0,
                          timestamp_type=0, key=b"k", value=b"{}", checksum=None,
                          serialized_key_size=1, serialized_value_size=2, headers=headers)


def test_a_delayed_record_with_a_bad_due_header_is_dropped_not_fatal() -> None:
    assert delay_route(_delayed([(TARGET, b"demat.router"), (DUE, b"12")])) == ("demat.router", 12)
    assert delay_route(_delayed([(TARGET, b"demat.router"), (DUE, b"soon")])) == (None, None)
    assert delay_route(_delayed([(TARGET, b"\xff"), (DUE, b"12")])) == (None, None)
    assert delay_route(_delayed([(DUE, b"12")])) == (None, 12)

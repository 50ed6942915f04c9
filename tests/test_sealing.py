"""Personal metadata sealed wherever an envelope is written as JSON (Kafka messages,
state records): unreadable there, opened back on reading, bound to its document; a NIR
outside the declared personal fields is refused at intake."""

from __future__ import annotations

from pathlib import Path

import pytest

from bus.intake import SubmissionError, validate_metadata
from bus.runtime import Runtime
from bus.settings import Settings
from schemas.envelope import Envelope, FileRef
from schemas.messages import DocState, DocumentState
from schemas.nir import holds_nir, nir_key
from schemas.personal import SEALED

NIR13 = "2870569123456"
NIR = NIR13 + f"{nir_key(NIR13):02d}"
TENANT = "216900910"
PERSONAL = ["Jeanne Brossart", NIR, "jeanne.brossart@example.fr", "1987-05-27", "2345.67"]


@pytest.fixture()
def runtime(tmp_path: Path) -> Runtime:
    return Runtime(Settings(var_dir=tmp_path, kafka_bootstrap="127.0.0.1:1"))


def _payslip(doc_id: str | None = None) -> Envelope:
    extra = {"id": doc_id} if doc_id else {}
    return Envelope(tenant=TENANT, flow="payslip", **extra, metadata={
        "matricule": "A0042", "period": "2026-11", "employer_siret": "21690091000011",
        "nir": NIR, "agent_name": "Jeanne Brossart", "birth_date": "1987-05-27",
        "email": "jeanne.brossart@example.fr", "net_amount": "2345.67",
        "channels": ["ensap"]}, files=[FileRef(sha256="a" * 64, size=10, name="bp.pdf",
                                                media_type="application/pdf")])


def test_personal_fields_travel_sealed_and_open_back(runtime: Runtime) -> None:
    env = _payslip()
    state = DocumentState(doc_id=env.id, state=DocState.RUNNING, envelope=env)
    for written in (env.model_dump_json(), state.model_dump_json()):
        assert SEALED in written and "A0042" in written  # the matricule is not declared
        assert not any(value in written for value in PERSONAL), written
    assert Envelope.model_validate_json(env.model_dump_json()).metadata == env.metadata
    again = DocumentState.model_validate_json(state.model_dump_json())
    assert again.envelope is not None and again.envelope.metadata == env.metadata
    assert env.model_dump()["metadata"] == env.metadata  # in memory: clear
    clear = env.model_dump_json(context={"clear": True})  # an export asks for it
    assert NIR in clear and SEALED not in clear


def test_a_sealed_blob_opens_only_in_its_own_document(runtime: Runtime) -> None:
    sealed = _payslip().model_dump(mode="json")
    moved = sealed | {"id": "another-document"}
    with pytest.raises(ValueError, match=r"metadata\.\$sealed"):
        Envelope.model_validate(moved)
    other = _payslip().model_dump(mode="json") | {"tenant": "214502494"}
    with pytest.raises(ValueError, match=r"metadata\.\$sealed"):
        Envelope.model_validate(other)


def test_a_flow_without_personal_fields_is_written_as_is(runtime: Runtime) -> None:
    env = Envelope(tenant=TENANT, flow="document", metadata={"title": "Lettre"},
                   files=[FileRef(sha256="b" * 64, size=1, name="l.pdf",
                                  media_type="application/pdf")])
    assert SEALED not in env.model_dump_json() and "Lettre" in env.model_dump_json()


@pytest.mark.parametrize(("text", "found"), [
    (NIR, True), (f"{NIR[0]} {NIR[1:3]} {NIR[3:5]} {NIR[5:7]} {NIR[7:10]} {NIR[10:13]} "
                  f"{NIR[13:]}", True),
    (f"agent NIR:{NIR}.", True), (NIR13 + f"{(nir_key(NIR13) + 1) % 97:02d}", False),
    ("21690091000011", False), (f"X{NIR}", False), (NIR + "1", False),
    ("2870" + "52A" + "123456" + f"{nir_key('28705' + '2A' + '123456'):02d}", True),
])
def test_a_nir_is_found_in_text_only_with_its_valid_key(text: str, found: bool) -> None:
    assert holds_nir(text) is found


def test_a_nir_outside_the_declared_fields_is_refused_naming_the_field(
        runtime: Runtime) -> None:
    validate_metadata("payslip", _payslip().metadata)  # declared: accepted
    with pytest.raises(SubmissionError) as refused:
        validate_metadata("document", {"title": f"Dossier de {NIR}"})
    assert refused.value.field == "metadata.title" and NIR not in str(refused.value)
    with pytest.raises(SubmissionError) as nested:
        validate_metadata("document", {"title": "Dossier", "tags": ["a", NIR]})
    assert nested.value.field.startswith("metadata.tags")

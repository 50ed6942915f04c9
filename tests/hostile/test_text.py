"""The strict text types (schemas/text.py), the terminal helper (bus/terminal.py), the
tenants' SIRETs, internal flows and the operator's texts."""

from __future__ import annotations

import asyncio
import re

import pytest
from pydantic import BaseModel, ValidationError

from bus.cli.console import fail
from bus.operator import DeadLetterDesk, check_action_text
from bus.tenants import Tenant
from bus.terminal import shown
from bus.uploads import UploadError, Uploads
from schemas.envelope import FileRef
from schemas.flow import Condition, FlowDefinition, StepDefinition
from schemas.messages import OperatorAction
from schemas.payslip import EnsapBatch
from schemas.siren import check_siren
from schemas.siret import check_siret
from schemas.text import (
    Digits,
    Email,
    FileName,
    MultiLine,
    SingleLine,
    ascii_digits,
    check_email,
    check_file_name,
    check_pattern,
)

FULLWIDTH, ARABIC_INDIC = "２１６９００９１０", "٢١٦٩٠٠٩١٠"


class Texts(BaseModel):
    one: SingleLine = ""
    many: MultiLine = ""
    mail: Email | None = None
    name: FileName = "a.pdf"
    code: Digits(5) = "00000"  # type: ignore[valid-type]


@pytest.mark.parametrize("value", ["a\n", "a\r", "\ta", "\x1b[31m", "\x00", "\x7f", "\x85",
                                   "\x9b", "a\u2028b", "a\u2029b", "\u202eab", "\u2066x",
                                   "\ud800"])
def test_single_line_refuses_every_control_character(value: str) -> None:
    with pytest.raises(ValidationError, match="control character U\\+"):
        Texts(one=value)


def test_multi_line_keeps_tab_and_line_breaks_only() -> None:
    assert Texts(many="ligne 1\r\n\tligne 2\n").many == "ligne 1\r\n\tligne 2\n"
    for value in ("\x1b]0;x\x07", "a\x00", "a\u202e", "a\x0c"):
        with pytest.raises(ValidationError, match="control character"):
            Texts(many=value)
    assert Texts(one="Délibération n° 12 — « tarifs »").one.startswith("Délibération")


@pytest.mark.parametrize("value", ["a@b.fr\n", "a@b.fr\r\nBcc: c@d.fr", "A <a@b.fr>",
                                   "a@b.fr, c@d.fr", "a b@c.fr", "a@b", "@b.fr", "a@.fr",
                                   "a..b@c.fr", "a@b..fr", "é@b.fr", "a@b.f", "a@-b.fr",
                                   "x" * 65 + "@b.fr", "a@" + "b" * 250 + ".fr"])
def test_email_is_one_plain_address(value: str) -> None:
    with pytest.raises(ValueError, match="not a single e-mail"):
        check_email(value)
    with pytest.raises(ValidationError):
        Texts(mail=value)


def test_good_emails_pass() -> None:
    for value in ("a@b.fr", "prenom.nom+paie@mairie-exemple.example.fr", "o'neil@x.org"):
        assert check_email(value) == value


@pytest.mark.parametrize(("name", "why"), [
    ("", "empty"), ("  ", "empty"), ("...", "empty"), ("a/b", "separator"),
    ("a\\b", "separator"), ("/etc/passwd", "separator"), ("..", "empty"),
    ("a..b", "'..'"), ("a\x00", "control"), ("a\nb", "control"), ("a\x1b", "control"),
    ("a\u202eb", "control"), ("é" * 128, "255 bytes"), ("a" * 256, "255 bytes")])
def test_file_names_refused_say_why(name: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        check_file_name(name)


def test_file_names_up_to_255_bytes_pass() -> None:
    for name in ("a" * 255, "é" * 127 + "a", "Délibération 2025-01 (signée).pdf", ".bashrc"):
        assert check_file_name(name) == name


@pytest.mark.parametrize("value", ["12345\n", "１２３４５", "١٢٣٤٥", "۱۲۳۴۵", "1234", "123456",
                                   " 1234", "12 45"])
def test_digits_are_ascii_and_counted(value: str) -> None:
    with pytest.raises(ValidationError, match="exactly 5 ASCII digits"):
        Texts(code=value)
    assert not ascii_digits(value, 5)


def test_siren_and_siret_refuse_unicode_digits_and_newlines() -> None:
    assert check_siren("216900910") == "216900910"
    for value in (FULLWIDTH, ARABIC_INDIC, "216900910\n"):
        with pytest.raises(ValueError, match="SIREN must be 9 digits"):
            check_siren(value)
    for value in ("２１６９００９１０００００１１", "21690091000011\n", "٢١٦٩٠٠٩١٠٠٠٠١١"):
        with pytest.raises(ValueError, match="SIRET must be 14 digits"):
            check_siret(value)


def test_check_pattern_matches_whole() -> None:
    regex = re.compile(r"[A-Z]+")
    assert check_pattern(regex, "ABC", "upper") == "ABC"
    for value in ("ABC\n", "ABCd", "aABC"):
        with pytest.raises(ValueError, match="upper"):
            check_pattern(regex, value, "upper")


def test_shown_escapes_controls_and_markup() -> None:
    assert shown("\x1b[2J[red]x[/]\n\u202e") == r"\x1b[2J\[red]x\[/]\n\u202e"
    assert shown(None) == "" and shown("Délibération") == "Délibération"


def test_fail_prints_the_message_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    assert fail("bad name '\x1b[31m[bold]x'") == 2
    err = capsys.readouterr().err
    assert "\x1b[31m" not in err and "\\x1b" in err and "[bold]" in err


def test_tenant_sirets_belong_to_its_siren() -> None:
    city = Tenant(siren="216900910", name="A", sirets=["21690091000011"])
    assert city.owns_siret("21690091000011") and city.owns_siret("216 900 910 00011")
    assert not city.owns_siret("21690091000029") and not city.owns_siret("21450249400013")
    bare = Tenant(siren="216900910", name="A")
    assert bare.owns_siret("21690091000029") and not bare.owns_siret("21450249400013")
    assert not bare.owns_siret("２１６９００９１００００２９")
    with pytest.raises(ValidationError, match="not an establishment of SIREN 216900910"):
        Tenant(siren="216900910", name="A", sirets=["21450249400013"])


def test_an_internal_flow_names_its_producers() -> None:
    steps = [{"name": "noop", "kind": "noop"}]
    flow = FlowDefinition(name="x", metadata_model="document", steps=steps, internal=True,
                          producers=["chorus-import"])
    assert flow.admits("chorus-import") and not flow.admits("sdk")
    for bad in ({"internal": True}, {"producers": ["sdk"]}):
        with pytest.raises(ValidationError, match="internal flow names the producers"):
            FlowDefinition(name="x", metadata_model="document", steps=steps, **bad)


def test_operator_texts_are_refused_before_any_action() -> None:
    with pytest.raises(ValueError, match=r"^actor: control character U\+000A"):
        check_action_text("eve\nadmin", "", None)
    with pytest.raises(ValueError, match=r"^reason: control character U\+001B"):
        check_action_text("eve@host", "ok\x1b[2J", None)
    with pytest.raises(ValueError, match=r"^from_step: "):
        check_action_text("eve@host", "", "deposit\n")
    check_action_text("eve@host", "relancé\nà la main", "deposit")
    desk = DeadLetterDesk.__new__(DeadLetterDesk)  # refused before it touches anything
    with pytest.raises(ValueError, match=r"^actor: "):
        asyncio.run(desk.discard([{"id": "x"}], actor="a\rb", reason="r"))
    with pytest.raises(ValidationError):
        OperatorAction(doc_id="d", action="discard", actor="a\x00", reason="")


def test_uploads_refuse_bad_names_naming_name() -> None:
    uploads = Uploads(store=None, max_size=10)  # type: ignore[arg-type]
    for name in ("", "a/b", "../x", "a\x00", "é" * 200):
        with pytest.raises(UploadError) as refused:
            uploads.start("216900910", name, 5)
        assert refused.value.field == "name"


@pytest.mark.parametrize(("model", "field", "good"), [
    (FileRef, "sha256", "a" * 64), (EnsapBatch, "id", "LOT-1"),
    (StepDefinition, "name", "deposit"), (Condition, "field", "meta.sign")])
def test_pydantic_patterns_match_whole(model: type[BaseModel], field: str, good: str) -> None:
    """``Field(pattern=...)`` runs on pydantic's Rust engine, whose ``$`` is the end of
    the text: a final newline is refused there too."""
    base = {"FileRef": {"size": 1, "media_type": "x", "name": "a"},
            "EnsapBatch": {"index": 0, "size": 1}, "StepDefinition": {"kind": "noop"},
            "Condition": {}}[model.__name__]
    model.model_validate(base | {field: good})
    for bad in (good + "\n", good.replace(good[0], "５", 1)):
        with pytest.raises(ValidationError):
            model.model_validate(base | {field: bad})

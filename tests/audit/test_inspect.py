"""``demat inspect`` on real published files: kind, schema verdict, key fields, signature."""

from __future__ import annotations

from pathlib import Path

import pytest

from bus.audit.inspect import inspect_bytes, inspect_path
from tests.conftest import SHARED

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
FIXTURES = SHARED / "fixtures"


def _inspect(path: Path) -> dict:
    return inspect_path(path).as_dict()


# --- ACTES --------------------------------------------------------------------------------


def test_aracte_gives_the_official_id() -> None:
    r = _inspect(FIXTURES / "actes/samples/034-491011698-20171207-CL20171227_06-DE-1-2.xml")
    assert (r["kind"], r["valid"]) == ("actes.ARActe", True)
    assert r["fields"]["official_id"] == "034-491011698-20171207-CL20171227_06-DE"
    assert r["fields"]["date_reception"] == "2017-12-27"
    assert r["signature"]["present"] is False


def test_anomalie_acte_keeps_the_reason_and_its_schema_violation() -> None:
    r = _inspect(SAMPLES / "actes/034-000000000-20170701-20170721D-AI-1-3_0.xml")
    assert (r["kind"], r["valid"]) == ("actes.AnomalieActe", False)
    assert "DocumentPapier" in r["messages"][0]
    assert (r["fields"]["nature"], r["fields"]["detail"]) == ("042", "Ca ne fonctionne pas")


def test_anomalie_enveloppe_read_in_its_latin1_encoding() -> None:
    r = _inspect(SAMPLES / "actes/ANO_EACT--210703385--20170612-2.xml")
    assert (r["kind"], r["valid"]) == ("actes.AnomalieEnveloppe", True)
    assert r["fields"]["nature"] == "5"
    assert "PREF-VERIF-02 : Votre numéro de SIREN" in r["fields"]["detail"]


@pytest.mark.parametrize(("name", "kind"), [
    ("034-000000000-20170701-20170725A-AI-2-1_0.xml", "actes.CourrierSimple"),
    ("034-000000000-20170701-20170725A-AI-5-1_0.xml", "actes.DefereTA")])
def test_prefecture_letters_name_the_acte(name: str, kind: str) -> None:
    r = _inspect(SAMPLES / "actes" / name)
    assert (r["kind"], r["valid"]) == (kind, True)
    assert r["fields"]["official_id"] == "034-000000000-20170701-20170725A-AI"


def test_an_aracte_that_breaks_the_schema_is_still_read() -> None:
    r = _inspect(SAMPLES / "actes/ar-actes.xml")
    assert (r["kind"], r["valid"]) == ("actes.ARActe", False)
    assert "ActeRecu" in r["messages"][0]
    assert r["fields"]["official_id"] == "069-123456789-20130601-20130623C-AI"


def test_actes_envelope_and_form() -> None:
    envelope = _inspect(FIXTURES / "actes/samples/EACT--214502494--20170717-6.xml")
    assert (envelope["kind"], envelope["valid"]) == ("actes.EnveloppeCLMISILL", True)
    assert envelope["fields"]["siren"] == "214502494"
    form = _inspect(FIXTURES / "actes/samples/034-491011698-20171207-CL20171227_06-DE-1-1_0.xml")
    assert form["kind"] == "actes.Acte" and form["fields"]["acte"]["number"] == "CL20171227_06"


# --- PES ----------------------------------------------------------------------------------


def test_accepted_acquit() -> None:
    r = _inspect(SAMPLES / "pes/ACQUIT_PESALR2_49101169800000_171227_2045.xml")
    assert (r["kind"], r["valid"]) == ("pes.acquit", True)
    assert (r["fields"]["EtatAck"], r["fields"]["accepted"], r["fields"]["errors"]) == (
        "1", True, [])
    assert r["fields"]["file_name"] == "HELIOS_SIMU_ALR2_1514384631_264491346.xml"


def test_refused_acquit_keeps_the_refusal_reason_though_it_breaks_its_schema() -> None:
    r = _inspect(SAMPLES / "pes/pes_acquit_not_valid.xml")
    assert (r["kind"], r["valid"]) == ("pes.acquit", False)
    assert r["messages"]
    assert (r["fields"]["EtatAck"], r["fields"]["accepted"]) == ("0", False)
    [error] = r["fields"]["errors"]
    assert error["code"] == "ERREUR_AUTRE"
    assert error["text"].startswith("Une erreur technique est survenue")


def test_acquit_with_codcol_000_is_read_and_reported_invalid() -> None:
    data = (FIXTURES / "pes/samples/PES_ACQUIT.xml").read_bytes()
    assert data.count(b'<CodCol V="400"/>') == 1
    r = inspect_bytes("acquit.xml", data.replace(b'<CodCol V="400"/>', b'<CodCol V="000"/>'))
    assert (r.kind, r.valid) == ("pes.acquit", False)
    assert "CodCol" in r.messages[0] and "'000'" in r.messages[0]
    assert (r.fields["code_col"], r.fields["EtatAck"]) == ("000", "1")


def test_signed_pes_of_2017_intact_and_valid_at_signing_time() -> None:
    r = _inspect(SAMPLES / "pes/PESALR2_49101169800000_171227_2045.xml")
    assert r["kind"] == "pes.aller" and r["valid"] is False  # as Pastell published it
    sig = r["signature"]
    assert (sig["present"], sig["intact"], sig["valid_at_signing_time"], sig["trusted"]) \
        == (True, True, True, None)
    assert sig["signed_at"] == "2017-12-27T14:21:55+00:00"
    assert {"sha1-digest", "cert-expired-since"} <= set(sig["findings"])
    assert sig["details"][0]["error"] is None  # SHA-1 is a finding, not an error here
    assert r["fields"]["bordereaux"][0]["Id"] == "BORD514432"


def test_altered_signed_pes_is_reported_invalid() -> None:
    data = (SAMPLES / "pes/PESALR2_49101169800000_171227_2045.xml").read_bytes()
    assert data.count(b'<MtBordHT V="75724.75"/>') == 1
    r = inspect_bytes("pes.xml", data.replace(b'V="75724.75"', b'V="1.00"')).as_dict()
    sig = r["signature"]
    assert sig["present"] and sig["intact"] is False
    assert sig["details"][0]["error"].startswith("invalid signature")


# --- SEDA ---------------------------------------------------------------------------------


def test_vitam_reply_gives_the_system_id() -> None:
    r = _inspect(SAMPLES / "seda/atr-with-seda-2.1.xml")
    assert (r["kind"], r["valid"]) == ("seda.ArchiveTransferReply", True)
    f = r["fields"]
    assert (f["ReplyCode"], f["reply_style"]) == ("OK", "vitam")
    assert f["archival_id"] == "aeaqaaaaaaeaaaababtjoamasqdc3oyaaaba"
    assert f["request_id"] == "aeaaaaaaaaeaaaababtjoamasqdatiyaaaaq"


def test_asalae_reply_gives_the_archival_agency_identifier() -> None:
    r = _inspect(FIXTURES / "seda/samples/ArchiveTransferReply-2.1-accepted.xml")
    assert (r["kind"], r["valid"]) == ("seda.ArchiveTransferReply", True)
    f = r["fields"]
    assert (f["ReplyCode"], f["archival_id"], f["reply_style"]) == (
        "000", "AE_2022_15", "asalae")


def test_seda_transfer_and_acknowledgement() -> None:
    transfer = _inspect(FIXTURES / "seda/samples/ArchiveTransfer-2.1.xml")
    assert (transfer["kind"], transfer["valid"]) == ("seda.ArchiveTransfer", True)
    ack = _inspect(FIXTURES / "seda/samples/Acknowledgement-2.1.xml")
    assert ack["kind"] == "seda.Acknowledgement" and ack["fields"]["received_id"]


# --- invoices, ENSAP --------------------------------------------------------------------


def test_facturx_pdf() -> None:
    r = _inspect(SAMPLES / "invoice/invoice_EN16931.pdf")
    assert (r["kind"], r["valid"]) == ("invoice.facturx", True)
    assert (r["fields"]["number"], r["fields"]["total"], r["fields"]["profile"]) == (
        "F20260023", "104.90", "en16931")


@pytest.mark.parametrize(("path", "kind", "number", "total"), [
    ("einvoice/samples/factur-x-en16931.xml", "invoice.cii", "F20260023", "104.90"),
    ("einvoice/samples/ubl-21-en16931.xml", "invoice.ubl", "F124212", "208.03"),
    ("chorus/samples/facture-pivot.xml", "invoice.pivot", "FAC19-2512", "873.99")])
def test_xml_invoices(path: str, kind: str, number: str, total: str) -> None:
    r = _inspect(FIXTURES / path)
    assert (r["kind"], r["valid"], r["fields"]["number"], r["fields"]["total"]) == (
        kind, True, number, total)


def test_invoice_breaking_its_schema_keeps_number_and_total() -> None:
    data = (FIXTURES / "einvoice/samples/ubl-21-en16931.xml").read_bytes()
    r = inspect_bytes("ubl.xml", data.replace(b"<cbc:IssueDate>", b"<cbc:IssueDay>", 1)
                      .replace(b"</cbc:IssueDate>", b"</cbc:IssueDay>", 1))
    assert (r.kind, r.valid) == ("invoice.ubl", False) and r.messages
    assert (r.fields["number"], r.fields["total"]) == ("F124212", "208.03")


def test_ensap_envelope() -> None:
    r = _inspect(FIXTURES / "ensap/exemple.xml")
    assert (r["kind"], r["valid"]) == ("ensap.envelope", True)
    assert r["fields"]["nature_flux"] == "ENVOI-BP-GENERIQUE"


# --- PDF, unknown -------------------------------------------------------------------------


def test_pades_lta_pdf() -> None:
    r = _inspect(SAMPLES / "pdf/pades-lta-dss-indirect-arrs-test.pdf")
    assert (r["kind"], r["valid"]) == ("pdf.signed", True)  # structure read in full
    sig = r["signature"]
    assert (sig["intact"], sig["valid_at_signing_time"]) == (True, True)
    assert [d["format"] for d in sig["details"]] == ["pades", "pades-doc-timestamp"]


def test_plain_pdf() -> None:
    r = _inspect(SAMPLES / "pdf/minimal.pdf")
    assert (r["kind"], r["signature"]["present"], r["valid"]) == ("pdf", False, True)


def test_a_truncated_pdf_is_invalid(tmp_path: Path) -> None:
    data = (SAMPLES / "pdf/pades-lta-dss-indirect-arrs-test.pdf").read_bytes()
    (tmp_path / "cut.pdf").write_bytes(data[:len(data) // 3])
    r = inspect_path(tmp_path / "cut.pdf").as_dict()
    assert r["kind"].startswith("pdf") and r["valid"] is False


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "empty file"), (b"\x00\x01binary", "not a PDF, XML"),
    (b"<PES_Aller><EnTetePES>", "not well-formed XML")])
def test_unreadable_files_are_unknown_with_the_reason(data: bytes, reason: str) -> None:
    r = inspect_bytes("x", data)
    assert (r.kind, r.valid) == ("unknown", None)
    assert reason in r.messages[0]


def test_a_missing_file_is_unknown_not_a_traceback(tmp_path: Path) -> None:
    r = inspect_path(tmp_path / "absent.xml")
    assert r.kind == "unknown" and "cannot read" in r.messages[0]

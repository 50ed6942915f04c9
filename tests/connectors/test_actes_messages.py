"""ACTES v1.1 message layer: schema validity, naming, archives, parsing of real samples."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from lxml import etree
from pydantic import ValidationError

from connectors.s2low import actes as A
from schemas.acte import ActeMetadata, ActeNature, Classification, TenantActesSettings

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
SAMPLES = SHARED / "fixtures" / "actes" / "samples"
XSDCHECK = SHARED / "tools" / "xsdcheck.py"
PDF = b"%PDF-1.4\n% acte\n%%EOF\n"

TENANT = TenantActesSettings(
    siren="216900910", departement="69", arrondissement=1, nature_autorite="32",
    referent={"name": "Jeanne Martin", "phone": "0472000000", "email": "j.martin@ville.fr"},
    return_emails=["actes@ville.fr", "actes@ville.fr"])


def _meta(**changes: object) -> ActeMetadata:
    data: dict[str, object] = {
        "nature": "DE", "number": "DEL20250925_37", "decision_date": date(2025, 9, 25),
        "subject": "Budget primitif — exercice 2026 (élus & agents)",
        "classification": "7.1", "classification_date": date(2025, 1, 1),
        "annexes": [{"file_name": "annexe.pdf", "typology": "41_NC"}]}
    return ActeMetadata(**(data | changes))


def _schema() -> etree.XMLSchema:
    xsd = ROOT / "schemas" / "xsd" / "actes" / "actesv1_1.xsd"
    return etree.XMLSchema(etree.parse(str(xsd)))


def _generated() -> dict[str, bytes]:
    archive = A.build_acte_archive(TENANT, _meta(), PDF, [PDF])
    files = A.unpack(archive.data)
    base = archive.official_id or ""
    day = date(2025, 10, 1)
    classif = Classification.from_xml(A.build_retour_classification(
        Classification(version_date=day, subjects={"7": "Finances", "7.1": "Budget"})))
    return {
        "envelope": files[archive.envelope_name], "acte": files[archive.form_name],
        "annulation": A.build_annulation(base),
        "reponse": A.build_reponse("ReponseLettreObservations", base, day, ["r.pdf"]),
        "pieces": A.build_reponse("PieceComplementaire", base, day, ["a.pdf", "b.pdf"]),
        "refus": A.build_reponse("RefusPieceComplementaire", base, day, ["r.pdf"]),
        "demande_classif": A.build_demande_classification(day),
        "aracte": A.build_aracte(files[archive.form_name], base, day, day),
        "anomalie": A.build_anomalie_acte(files[archive.form_name], day, "001", "x", day),
        "ar_annulation": A.build_ar_annulation(base, day),
        "lettre": A.build_courrier("LettreObservations", base, day, "l.pdf", "motif"),
        "defere": A.build_defere(base, day, "illégalité", ["d.pdf"]),
        "ar_reponse": A.build_ar_courrier("ARPieceComplementaire", base, day, day),
        "classification": A.build_retour_classification(classif),
        "env_pref": A.build_envelope_misillcl("069", 0, "216900910", ["f.xml"]),
    }


@pytest.mark.parametrize("name", list(_generated()))
def test_generated_messages_are_valid_with_lxml(name: str) -> None:
    doc = etree.fromstring(_generated()[name])
    schema = _schema()
    assert schema.validate(doc), schema.error_log


def test_generated_messages_pass_the_reference_validator(tmp_path: Path) -> None:
    paths = []
    for name, xml in _generated().items():
        path = tmp_path / f"{name}.xml"
        path.write_bytes(xml)
        paths.append(str(path))
    result = subprocess.run([sys.executable, str(XSDCHECK), "actes", *paths],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("VALID ") == len(paths)


def test_archive_names_layout_and_verification() -> None:
    archive = A.build_acte_archive(TENANT, _meta(), PDF, [PDF], serial=7,
                                   sent_on=date(2025, 9, 26))
    assert archive.name == "SLO-EACT--216900910--20250926-7.tar.gz"
    assert archive.official_id == "069-216900910-20250925-DEL20250925_37-DE"
    assert archive.file_names == [
        "EACT--216900910--20250926-7.xml",
        "069-216900910-20250925-DEL20250925_37-DE-1-1_0.xml",
        "99_DE-069-216900910-20250925-DEL20250925_37-DE-1-1_1.pdf",
        "41_NC-069-216900910-20250925-DEL20250925_37-DE-1-1_2.pdf"]
    verified = A.verify_archive(archive.name, archive.data)
    assert verified.envelope.forms == [archive.form_name]
    assert verified.envelope.return_emails == ["actes@ville.fr"]  # deduplicated
    form = A.parse_message(verified.forms[archive.form_name])
    assert form.acte.classification == "7.1" and form.acte.subject.startswith("Budget")
    plain = A.build_acte_archive(TENANT, _meta(), PDF, [PDF], typology_prefix=False)
    assert "069-216900910-20250925-DEL20250925_37-DE-1-1_1.pdf" in plain.file_names


def test_verify_archive_rejects_bad_archives() -> None:
    good = A.build_acte_archive(TENANT, _meta(), PDF, [PDF], sent_on=date(2025, 9, 26))
    with pytest.raises(A.ActesError, match="name"):
        A.verify_archive("foo.tar.gz", good.data)
    with pytest.raises(A.ActesError, match="format"):
        A.verify_archive(good.name, b"not a tarball")
    files = A.unpack(good.data)
    missing_pdf = {n: d for n, d in files.items() if not n.endswith("_2.pdf")}
    with pytest.raises(A.ActesError, match="missing"):
        A.verify_archive(good.name, A.pack(A.ArchiveFile(name=n, data=d)
                                           for n, d in missing_pdf.items()))
    files[good.form_name] = files[good.form_name].replace(b"CodeMatiere2", b"CodeMatiere9")
    with pytest.raises(A.ActesError, match="not valid ACTES"):
        A.verify_archive(good.name, A.pack(A.ArchiveFile(name=n, data=d)
                                           for n, d in files.items()))


def test_parse_shared_samples() -> None:
    ar = A.parse_message((SAMPLES / "034-491011698-20171207-CL20171227_06-DE-1-2.xml")
                         .read_bytes())
    assert isinstance(ar, A.ARActe)
    assert ar.id_acte == "034-491011698-20171207-CL20171227_06-DE"
    assert ar.date_reception == date(2017, 12, 27)
    assert ar.acte.number == "CL20171227_06" and ar.acte.nature is ActeNature.DELIBERATION
    assert ar.acte.classification == "3.2" and ar.acte.subject == "Fichier signé parapheur"
    assert ar.classification_date_current == date(2017, 11, 13)
    acte = A.parse_message((SAMPLES / "034-491011698-20171207-CL20171227_06-DE-1-1_0.xml")
                           .read_bytes())
    assert isinstance(acte, A.ActeForm) and acte.acte.document.endswith("-1-1_1.pdf")
    env = A.parse_message((SAMPLES / "EACT--214502494--20170717-6.xml").read_bytes())
    assert isinstance(env, A.EnveloppeCLMISILL)
    assert (env.siren, env.departement, env.nature_autorite) == ("214502494", "045", "31")
    pref = A.parse_message((SAMPLES / "EACT--SPREF0441-214400152-20181012-9.xml").read_bytes())
    assert isinstance(pref, A.EnveloppeMISILLCL) and pref.siren == "214400152"


def test_parse_every_reply_type() -> None:
    msgs = {k: A.parse_message(v) for k, v in _generated().items()}
    assert isinstance(msgs["anomalie"], A.AnomalieActe) and msgs["anomalie"].reason
    assert isinstance(msgs["ar_annulation"], A.ARAnnulation)
    assert isinstance(msgs["lettre"], A.LettreObservations) and msgs["lettre"].motif == "motif"
    assert isinstance(msgs["defere"], A.DefereTA) and msgs["defere"].pieces == ["d.pdf"]
    assert isinstance(msgs["ar_reponse"], A.ARReponse)
    assert msgs["pieces"].documents == ["a.pdf", "b.pdf"]
    assert msgs["classification"].classification.has("7.1")
    day = date(2025, 10, 1)
    for kind in ("ARDemandePieceComplementaire", "ARLettreObservations"):
        assert A.parse_message(A.build_ar_courrier(kind, "069-216900910-20250925-X-DE",
                                                   day)).kind == kind
    assert A.parse_message(A.build_courrier("DemandePieceComplementaire", "069-216900910-"
                                            "20250925-X-DE", day, "p.pdf", "budget")
                           ).description == "budget"


def test_metadata_validation_names_the_field() -> None:
    cases = {"number": "del-1", "decision_date": date.today() + timedelta(days=1),
             "subject": "x" * 501, "classification": "9", "nature": "ZZ",
             "main_typology": "DE"}
    for field, value in cases.items():
        with pytest.raises(ValidationError) as info:
            _meta(**{field: value})
        assert info.value.errors()[0]["loc"][0] == field
    assert _meta(nature=3).nature.code == "AI" and _meta(nature="BF").nature == 5
    assert _meta(classification=["9", 1, 2]).classification == "9.1.2"
    assert _meta().main_typology == "99_DE" and _meta().key("216900910") == \
        "216900910-20250925-DEL20250925_37"


def test_tenant_settings() -> None:
    assert TenantActesSettings(siren="216900910", departement="2A", arrondissement=0,
                               nature_autorite=3, return_emails=["a@b.fr"]
                               ).departement == "02A"
    with pytest.raises(ValidationError, match="siren"):
        TenantActesSettings(siren="123456789", departement="069", arrondissement=1,
                            nature_autorite="32", return_emails=["a@b.fr"])
    with pytest.raises(ValidationError, match="return_emails"):
        TenantActesSettings(siren="216900910", departement="069", arrondissement=1,
                            nature_autorite="32", return_emails=["not-an-email"])


def test_classification_checks() -> None:
    from connectors.s2low.simulator import default_classification

    classif = Classification.from_xml(A.build_retour_classification(default_classification()))
    assert classif.has("9.1") and classif.has([7, 1]) and not classif.has("9.9")
    assert classif.label("7.1") == "Décisions budgétaires"
    assert "99_DE" in classif.typologies(ActeNature.DELIBERATION)
    assert classif.check(_meta()) == []
    problems = classif.check(_meta(classification="8.8", annexes=[
        {"file_name": "a.pdf", "typology": "22_XX"}]))
    assert len(problems) == 2 and problems[0].startswith("classification")

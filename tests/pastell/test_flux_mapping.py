"""The HR and invoice flux of the incumbent mapped to the bus's flows, without a bus:
every mapped field is a field of its flow's metadata model, a filled form makes
metadata the model accepts, and a bad form names the Pastell field at fault."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

import schemas.acte
import schemas.hr
import schemas.invoice
import schemas.pes  # noqa: F401
from bus.api.pastell.actions import metadata
from bus.api.pastell.model import last_action, missing_field
from bus.flows import FLOWS_DIR, FlowRegistry
from bus.intake import SubmissionError
from bus.pastell.flux import FLUX, NOT_MAPPED
from schemas.messages import DocState, DocumentState
from schemas.metadata import metadata_model
from schemas.payslip import PayslipMetadata
from schemas.personal import personal_fields

PAYSLIP = {"titre_document": "Bulletin novembre", "matricule_agent": "A0042",
           "prenom_agent": "Jeanne", "nom_usage_agent": "Brossart",
           "email_agent": "jeanne.brossart@exemple.fr", "siret_collectivite": "21690091000011",
           "nom_collectivite": "Ville A", "mois_bulletin": "11", "annee_bulletin": "2026"}
HR = {"titre_document": "Arrêté de nomination", "matricule_agent": "A0042",
      "prenom_agent": "Jeanne", "nom_usage_agent": "Brossart", "type_document": "nomination",
      "objet": "Nomination stagiaire", "numero_de_lacte": "RH2026_1",
      "date_de_lacte": "2026-11-02", "classification": "4.1"}


def _record(data: dict[str, str]) -> dict:
    return {"data": dict(data), "files": {"document": [{"name": "d.pdf"}]}}


FLOWS = FlowRegistry.load(FLOWS_DIR)


def _model(flow: str) -> type:
    return metadata_model(FLOWS.get(flow).metadata_model)


@pytest.mark.parametrize("name", sorted(FLUX))
def test_every_mapped_field_is_a_field_of_the_flows_model(name: str) -> None:
    flux = FLUX[name]
    for flow in flux.flows:
        known = _model(flow).model_fields
        wrong = {f: m.meta for f, m in flux.fields.items() if m.meta and m.meta not in known}
        assert not wrong, (name, flow, wrong)
        assert set(flux.defaults) <= set(known), (name, flow)
        hidden = personal_fields(_model(flow))
        clear = [f for f, m in flux.fields.items() if m.meta in hidden and not m.personal]
        assert not clear, f"{name}: personal in {flow} but stored in clear: {clear}"
    assert name not in NOT_MAPPED


def test_a_pay_slip_form_makes_pay_slip_metadata() -> None:
    meta = metadata(FLUX["rh-bulletin-salaire"], _record(PAYSLIP))
    slip = PayslipMetadata.model_validate(meta)
    assert (slip.period, slip.agent_name, slip.channels) == (
        "2026-11", "Jeanne Brossart", ["secure-mail"])
    assert slip.email == PAYSLIP["email_agent"] and slip.net_amount is None
    assert "titre_document" not in meta and "nom_collectivite" not in meta


@pytest.mark.parametrize(("field", "value"), [("mois_bulletin", "13"),
                                              ("annee_bulletin", "26"),
                                              ("mois_bulletin", "novembre")])
def test_a_bad_period_names_its_pastell_field(field: str, value: str) -> None:
    with pytest.raises(SubmissionError) as exc:
        metadata(FLUX["rh-bulletin-salaire"], _record(PAYSLIP | {field: value}))
    assert exc.value.field == field


def test_a_pay_slip_without_e_mail_is_incomplete_naming_it() -> None:
    record = _record({k: v for k, v in PAYSLIP.items() if k != "email_agent"})
    assert "Adresse e-mail de l'agent" in missing_field(FLUX["rh-bulletin-salaire"], record)


def test_an_hr_document_goes_to_the_flow_of_its_type() -> None:
    flux = FLUX["rh-document-individuel"]
    assert flux.flow_for(HR) == "hr-decree"
    assert flux.flow_for(HR | {"type_document": "recrutement"}) == "hr-contract"
    meta = metadata(flux, _record(HR | {"envoi_tdt_actes": "on"}))
    decree = _model("hr-decree").model_validate(meta | {"classification_date": "2026-01-01"})
    assert decree.act_type == "nomination" and decree.agent_name == "Jeanne Brossart"
    assert decree.transmit is True and decree.decision_date == date(2026, 11, 2)
    with pytest.raises(SubmissionError) as exc:
        flux.flow_for(HR | {"type_document": "mutation"})
    assert exc.value.field == "type_document" and "recrutement" in exc.value.message
    with pytest.raises(ValidationError):  # a contract's type is no decree's
        _model("hr-decree").model_validate(
            metadata(flux, _record(HR | {"type_document": "avenant"}))
            | {"classification_date": "2026-01-01"})


def test_an_invoice_form_makes_invoice_metadata() -> None:
    flux = FLUX["facture-chorus-fournisseur"]
    record = {"data": {"numero_facture": "F-2026-7", "envoi_sae": "on",
                       "depot_type": "UPLOAD_API"}, "files": {}}
    assert "fichier_facture_pdf" in missing_field(flux, record)
    meta = _model("invoice").model_validate(metadata(flux, record))
    assert (meta.invoice_number, meta.title, meta.archive) == ("F-2026-7", "F-2026-7", True)
    assert metadata(flux, {"data": {}, "files": {}})["archive"] is False  # unchecked


def _state(state: DocState, step: str) -> DocumentState:
    now = datetime.now(UTC)
    return DocumentState(doc_id="d", state=state, current_step=step, created_at=now,
                         updated_at=now)


@pytest.mark.parametrize(("flux", "state", "step", "name"), [
    ("facture-chorus-fournisseur", DocState.WAITING, "deposit", "send-chorus"),
    ("facture-chorus-fournisseur", DocState.RUNNING, "status", "verif-statut-chorus"),
    ("facture-chorus-fournisseur", DocState.REJECTED, "deposit", "flux-rejete"),
    ("ls-document-pdf", DocState.RUNNING, "deposit", "send-ged"),  # unchanged elsewhere
    ("rh-bulletin-salaire", DocState.RUNNING, "secure-mail", "send-mailsec"),
    ("rh-bulletin-salaire", DocState.REJECTED, "mail-receipt", "non-recu"),
    ("rh-bulletin-salaire", DocState.COMPLETED, "mail-receipt", "termine"),
    ("rh-document-individuel", DocState.RUNNING, "agent-file", "send-ged"),
])
def test_state_names_of_the_new_flux(flux: str, state: DocState, step: str, name: str
                                     ) -> None:
    record = {"actions": [{"action": "orientation", "message": "", "date": ""}]}
    assert last_action(FLUX[flux], record, _state(state, step))["action"] == name

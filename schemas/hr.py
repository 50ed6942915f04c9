"""Metadata of HR acts: individual decrees (arrêtés) and contracts of an agent.

They are actes (ACTES fields: number, decision date, subject, classification...) plus
the agent they concern. Whether the act goes to the prefecture follows its type
(default table below: acts of appointment, career, discipline and end of service,
and recruitment contracts, are transmitted for legality control); ``transmit``
overrides it. The agent's name and e-mail are personal: never journaled in clear.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from schemas.acte import ActeDocumentMetadata, ActeNature
from schemas.matricule import Matricule
from schemas.metadata import registers
from schemas.personal import PERSONAL
from schemas.text import Email, SingleLine

DecreeType = Literal["nomination", "titularisation", "avancement", "sanction",
                     "licenciement", "fin-de-fonctions", "temps-partiel", "conge",
                     "mise-a-disposition", "autre"]
ContractType = Literal["recrutement", "renouvellement", "avenant", "vacation"]

# act type -> sent to the prefecture by default
DECREE_TRANSMISSION: dict[str, bool] = {
    "nomination": True, "titularisation": True, "avancement": True, "sanction": True,
    "licenciement": True, "fin-de-fonctions": True, "temps-partiel": False, "conge": False,
    "mise-a-disposition": False, "autre": False}
CONTRACT_TRANSMISSION: dict[str, bool] = {
    "recrutement": True, "renouvellement": True, "avenant": False, "vacation": False}


class _HrAct(ActeDocumentMetadata):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    matricule: Matricule = Field(description="the agent's payroll number (agent file folder)")
    agent_name: SingleLine = Field(min_length=1, max_length=200, json_schema_extra=PERSONAL)
    agent_email: Email | None = Field(default=None, json_schema_extra=PERSONAL)
    transmit: bool | None = Field(default=None, description="override the type's rule")
    signature_subtype: SingleLine | None = Field(default=None, max_length=100)

    def needs_transmission(self) -> bool:
        raise NotImplementedError


@registers("hr-decree")
class HrDecreeMetadata(_HrAct):
    """An individual HR decree (arrêté individuel, ACTES nature 3)."""

    nature: ActeNature = ActeNature.ARRETE_INDIVIDUEL
    act_type: DecreeType

    @model_validator(mode="after")
    def _individual(self) -> HrDecreeMetadata:
        if self.nature != ActeNature.ARRETE_INDIVIDUEL:
            raise ValueError("an HR decree is an individual decree (nature 3, AI)")
        return self

    def needs_transmission(self) -> bool:
        return self.transmit if self.transmit is not None else DECREE_TRANSMISSION[self.act_type]


@registers("hr-contract")
class HrContractMetadata(_HrAct):
    """An employment contract (ACTES nature 4, contract), signed by the authority then
    the agent when the signature connector can run that double signature."""

    nature: ActeNature = ActeNature.CONTRAT_CONVENTION
    act_type: ContractType

    @model_validator(mode="after")
    def _contract(self) -> HrContractMetadata:
        if self.nature != ActeNature.CONTRAT_CONVENTION:
            raise ValueError("an HR contract has nature 4 (CC)")
        return self

    def needs_transmission(self) -> bool:
        if self.transmit is not None:
            return self.transmit
        return CONTRACT_TRANSMISSION[self.act_type]


HR_MODELS: dict[str, type[_HrAct]] = {"hr-decree": HrDecreeMetadata,
                                      "hr-contract": HrContractMetadata}


def hr_metadata(flow: str, metadata: dict[str, Any]) -> _HrAct:
    return HR_MODELS[flow].model_validate(metadata)

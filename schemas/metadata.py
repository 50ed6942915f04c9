"""Per-flow metadata models, looked up by the name a flow definition gives."""

from __future__ import annotations

from datetime import date
from importlib import import_module

from pydantic import BaseModel, ConfigDict, Field


class DocumentMetadata(BaseModel):
    """Metadata of a generic document (flow ``document``)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=500)
    description: str = Field(default="", max_length=5000)
    category: str = Field(default="courrier", max_length=100)
    document_date: date | None = None
    keywords: list[str] = Field(default_factory=list, max_length=50)
    author: str | None = Field(default=None, max_length=200)
    deposit: bool = True
    archive: bool = True  # False: not sent to the archive (SAE)
    archive_batch: str | None = Field(default=None, min_length=1, max_length=100)
    sign: bool = False  # run the sign step (tenant connector `signature`: seal or i-Parapheur)
    signature_subtype: str | None = Field(default=None, max_length=100)  # i-Parapheur sub-type
    parapheur_metadata: dict[str, str | int | float | bool] = Field(  # i-Parapheur folder
        default_factory=dict, max_length=50)


METADATA_MODELS: dict[str, str] = {
    "document": "schemas.metadata:DocumentMetadata",
    "acte": "schemas.acte:ActeDocumentMetadata",
    "acte-followup": "schemas.acte:ActeFollowupMetadata",
    "payslip": "schemas.payslip:PayslipMetadata",
    "hr-decree": "schemas.hr:HrDecreeMetadata",
    "hr-contract": "schemas.hr:HrContractMetadata",
    "invoice": "schemas.invoice:InvoiceMetadata",
    "invoice-in": "schemas.invoice:InvoiceInMetadata",
    "helios": "schemas.pes:HeliosMetadata",
}


def metadata_model(name: str) -> type[BaseModel]:
    """The pydantic model registered under ``name`` (``KeyError`` if unknown)."""
    module_name, _, attr = METADATA_MODELS[name].partition(":")
    return getattr(import_module(module_name), attr)

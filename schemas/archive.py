"""Archival settings: what a tenant tells its archive (``settings.archive`` in the tenants
file) and what a flow's ``archive`` step maps (its ``options``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.envelope import Envelope, FileRef, utcnow

SedaVersion = Literal["2.1", "2.2"]
FIELD_REF = r"^(meta|doc|tenant)\.[A-Za-z0-9_.]+$"


class AgencySettings(BaseModel):
    """An organisation as the archive knows it."""

    model_config = ConfigDict(extra="forbid")

    identifier: str = Field(min_length=1, max_length=200)
    name: str = ""


class RuleSettings(BaseModel):
    """Access and appraisal rules of one document type."""

    model_config = ConfigDict(extra="forbid")

    access_rule: str = Field(default="AR038", min_length=1)
    appraisal_rule: str = Field(default="P10Y", min_length=1)  # rule id or ISO 8601 duration
    final_action: Literal["Keep", "Destroy"] = "Keep"
    archival_profile: str | None = None  # overrides the tenant's profile for this type


class BatchLimits(BaseModel):
    """Bounds of one batch SIP; a tenant may tighten the flow's."""

    model_config = ConfigDict(extra="forbid")

    max_documents: int | None = Field(default=None, ge=1)
    max_bytes: int | None = Field(default=None, ge=1)
    max_wait_seconds: float | None = Field(default=None, ge=0)


class TenantArchiveSettings(BaseModel):
    """``settings.archive`` of a tenant."""

    model_config = ConfigDict(extra="forbid")

    seda_version: SedaVersion = "2.1"
    archival_agency: AgencySettings
    transferring_agency: AgencySettings
    originating_agency: AgencySettings | None = None
    archival_agreement: str | None = None
    archival_profile: str | None = None
    service_level: str | None = None
    digest_algorithm: Literal["sha256", "sha512"] = "sha256"
    rules: dict[str, RuleSettings] = Field(default_factory=dict)  # by document type
    batch: BatchLimits = Field(default_factory=BatchLimits)

    def rule_for(self, document_type: str) -> RuleSettings:
        """The rules of ``document_type`` (else ``default``, else the built-in defaults)."""
        return self.rules.get(document_type) or self.rules.get("default") or RuleSettings()


class BatchOptions(BaseModel):
    """Archive step in batch mode: members sharing ``key`` go in one SIP (or a few)."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=FIELD_REF)
    max_documents: int = Field(default=500, ge=1, le=100_000)
    max_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    max_wait_seconds: float = Field(default=300.0, ge=0)
    title: str = "Lot {batch.key}"
    description_level: str = "RecordGrp"


class ArchiveOptions(BaseModel):
    """The per-flow mapping of an ``archive`` step (``options`` in the flow YAML).

    Templates take ``{meta.x}``, ``{doc.id}``, ``{doc.flow}``, ``{tenant.name}``; a value
    naming a field (``meta.category``) is read from the document, else taken literally.
    """

    model_config = ConfigDict(extra="forbid")

    description_level: str = "Item"
    title: str = "{meta.title}"
    description: str = ""
    document_type: str = "doc.flow"
    keywords: list[str] = Field(default_factory=list)  # metadata fields (lists expand)
    date: str | None = None  # field with the document date (default: submission date)
    include_journal: bool = True
    include_artefacts: bool = False  # earlier steps' artefacts (ARActe, stamped acte...)
    batch: BatchOptions | None = None


class BatchMembership(BaseModel):
    """Archive step -> batcher: a document joins the batch of its tenant, flow, step and key.

    Keyed by ``group`` on the batch topic, so one batcher instance sees a whole group.
    """

    type: Literal["archive-member"] = "archive-member"
    doc_id: str
    group: str
    key: str
    step: str
    envelope: Envelope
    files: list[FileRef] = Field(default_factory=list)  # as archived; empty: the envelope's
    journal: FileRef
    artefacts: list[FileRef] = Field(default_factory=list)
    bytes: int = Field(ge=0)
    registered_at: datetime = Field(default_factory=utcnow)


class BatchRecord(BaseModel):
    """The batcher's record of one batch SIP (object store), read by its members."""

    batch_id: str
    transfer_id: str
    group: str
    tenant: str
    flow: str
    step: str
    key: str
    members: list[str]
    bytes: int = 0
    status: Literal["sealed", "sent", "replied", "failed"] = "sealed"
    manifest: FileRef | None = None
    ack: FileRef | None = None
    atr: FileRef | None = None
    reply_code: str | None = None
    comment: str = ""
    archival_id: str | None = None
    reply_problems: list[str] = Field(default_factory=list)  # replies kept off-schema
    error: str | None = None
    error_field: str | None = None
    sealed_at: datetime = Field(default_factory=utcnow)
    replied_at: datetime | None = None

"""The document envelope: what a producer submits and what travels on every topic."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FieldSerializationInfo,
    field_serializer,
    model_validator,
)

from schemas.ids import new_id
from schemas.personal import SEALED, opened, sealed
from schemas.siren import Siren
from schemas.text import SingleLine

SHA256_PATTERN = r"^[0-9a-f]{64}$"


def utcnow() -> datetime:
    """Timezone-aware current UTC time."""
    return datetime.now(UTC)


class FileRole(StrEnum):
    MAIN = "main"
    ANNEX = "annex"
    SIGNATURE = "signature"


class FileRef(BaseModel):
    """A file in the object store. Its sha256 is its object key (content addressing)."""

    model_config = ConfigDict(frozen=True)

    sha256: str = Field(pattern=SHA256_PATTERN)
    size: int = Field(ge=0)
    media_type: str
    role: FileRole = FileRole.MAIN
    name: str = Field(min_length=1, max_length=255)


class Envelope(BaseModel):
    """A document as submitted: identity, tenant, flow, metadata and file references."""

    id: str = Field(default_factory=new_id)
    tenant: Siren
    flow: str
    flow_version: int = 1
    producer: SingleLine = Field(default="cli", max_length=200)
    submitted_by: SingleLine | None = Field(  # the authenticated identity (API, token, OS user)
        default=None, max_length=200)
    idempotency_key: SingleLine | None = Field(default=None, max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)
    files: list[FileRef] = Field(min_length=1)
    created_at: datetime = Field(default_factory=utcnow)
    correlation_id: SingleLine | None = Field(default=None, max_length=200)

    @field_serializer("metadata")
    def _sealed_metadata(self, metadata: dict[str, Any], info: FieldSerializationInfo
                         ) -> dict[str, Any]:
        """Written as JSON (Kafka messages, state records), the personal fields are sealed
        (``schemas.personal.sealed``), unless the context asks for ``clear`` (an export)."""
        if not info.mode_is_json() or (info.context or {}).get("clear"):
            return metadata
        return sealed(self.tenant, self.flow, self.id, metadata)

    @model_validator(mode="before")
    @classmethod
    def _opened_metadata(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("metadata"), dict):
            meta = data["metadata"]
            if SEALED in meta:
                data = data | {"metadata": opened(str(data.get("tenant")), str(data.get("id")),
                                                  meta)}
        return data

    def fingerprint(self) -> str:
        """Digest of what the producer asked for (flow, metadata, files), for idempotency."""
        import hashlib
        import json

        body = json.dumps(
            {
                "flow": self.flow,
                "metadata": self.metadata,
                "files": [(f.sha256, f.role, f.name) for f in self.files],
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(body.encode()).hexdigest()

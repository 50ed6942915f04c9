"""From a document (envelope, tenant, the flow's ``archive`` options) to SEDA units,
SIP files and transfers. Shared by the archive step (one document per SIP) and the
batcher (many documents per SIP), so both describe a document the same way."""

from __future__ import annotations

import functools
import json
import re
from datetime import date, datetime
from pathlib import PurePosixPath
from typing import Any

from pydantic import ValidationError

from bus.flows import FlowRegistry
from bus.objectstore import ObjectStore
from bus.tenants import Tenant
from connectors.deposit import side_by_side
from connectors.sae import seda
from connectors.sae.sip import SipFile
from schemas.archive import ArchiveOptions, TenantArchiveSettings
from schemas.envelope import Envelope, FileRef
from schemas.errors import first_error
from schemas.metadata import metadata_model

TEMPLATE = re.compile(r"\{((?:meta|doc|tenant|batch)\.[A-Za-z0-9_.]+)\}")
JOURNAL_NAME = "journal.json"


class ArchiveConfigError(ValueError):
    """Archive settings or options are missing or wrong; ``field`` names where."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def tenant_settings(tenant: Tenant) -> TenantArchiveSettings:
    """The tenant's ``settings.archive``, validated."""
    raw = tenant.settings.get("archive")
    if not isinstance(raw, dict):
        raise ArchiveConfigError(f"tenant {tenant.siren} has no archive settings "
                                 "(settings.archive: archival_agency, transferring_agency...)",
                                 field="tenant.settings.archive")
    try:
        return TenantArchiveSettings.model_validate(raw)
    except ValidationError as exc:
        field, message = first_error(exc, "tenant.settings.archive")
        raise ArchiveConfigError(f"tenant {tenant.siren} {field.removeprefix('tenant.')}: "
                                 f"{message}", field=field) from None


def step_options(options: dict[str, Any], step: str) -> ArchiveOptions:
    """A flow's archive step options, validated."""
    try:
        return ArchiveOptions.model_validate(options)
    except ValidationError as exc:
        field, message = first_error(exc, "options")
        raise ArchiveConfigError(f"archive step {step!r} {field}: {message}",
                                 field=field) from None


@functools.cache
def _metadata_models() -> dict[str, str]:
    flows = FlowRegistry.load()
    return {name: flows.get(name).metadata_model for name in flows.names()}


def metadata_with_defaults(env: Envelope) -> dict[str, Any]:
    """The document's metadata, with the defaults of its flow's metadata model filled in
    (a producer may leave out ``category``: the model says ``courrier``)."""
    name = _metadata_models().get(env.flow)
    if name is None:
        return env.metadata
    try:
        defaults = metadata_model(name).model_validate(env.metadata).model_dump(mode="json")
    except ValidationError:
        return env.metadata
    return defaults | env.metadata


def field_value(ref: str, env: Envelope, tenant: Tenant, extra: dict[str, Any] | None = None
                ) -> tuple[bool, Any]:
    """Look up ``meta.x``, ``doc.id|flow|tenant``, ``tenant.name`` or ``batch.key``."""
    scope, _, path = ref.partition(".")
    data: Any
    if scope == "meta":
        data = metadata_with_defaults(env)
    elif scope == "doc":
        data = {"id": env.id, "flow": env.flow, "tenant": env.tenant,
                "created": env.created_at.date().isoformat()}
    elif scope == "tenant":
        data = {"name": tenant.name, "siren": tenant.siren}
    else:
        data = (extra or {}).get(scope, {})
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return False, None
        data = data[part]
    return True, data


def render(template: str, env: Envelope, tenant: Tenant,
           extra: dict[str, Any] | None = None) -> str:
    """Fill ``{meta.x}``-style placeholders (missing fields render empty)."""
    def one(match: re.Match[str]) -> str:
        found, value = field_value(match.group(1), env, tenant, extra)
        if not found or value is None:
            return ""
        return ", ".join(map(str, value)) if isinstance(value, list) else str(value)

    return TEMPLATE.sub(one, template).strip()


def _value_or_literal(spec: str, env: Envelope, tenant: Tenant) -> str:
    if re.match(r"^(meta|doc|tenant)\.", spec):
        found, value = field_value(spec, env, tenant)
        if not found or value in (None, ""):
            raise ArchiveConfigError(f"archive mapping needs {spec}, absent from document "
                                     f"{env.id}", field=spec.replace("meta.", "metadata.", 1))
        return str(value)
    return spec


def document_date(options: ArchiveOptions, env: Envelope, tenant: Tenant) -> date:
    """The date describing the document (its ``options.date`` field, else submission)."""
    if options.date:
        found, value = field_value(options.date, env, tenant)
        if found and value:
            try:
                return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
            except ValueError:
                raise ArchiveConfigError(f"{options.date} {value!r} is not an ISO date",
                                         field=options.date.replace("meta.", "metadata.", 1)
                                         ) from None
    return env.created_at.date()


def unit_id(doc_id: str) -> str:
    return f"u-{doc_id}"


def document_files(env: Envelope, files: list[FileRef], journal: FileRef | None,
                   store: ObjectStore, *, folder: str = "",
                   artefacts: list[FileRef] | None = None) -> list[SipFile]:
    """The SIP files of one document: ``files`` (its files as archived: signed versions,
    detached signatures), its journal, then earlier artefacts not among ``files``."""
    kept, journal_at = {ref.sha256 for ref in files}, len(files)
    refs = [*files, *([journal] if journal else []),
            *(ref for ref in artefacts or [] if ref.sha256 not in kept)]
    names = side_by_side(PurePosixPath(ref.name).name or f"file-{i}"
                         for i, ref in enumerate(refs))
    files = []
    for i, (ref, name) in enumerate(zip(refs, names, strict=True)):
        object_id = f"o-{env.id}-journal" if journal and i == journal_at else \
            f"o-{env.id}-{i}"
        files.append(SipFile(
            object_id=object_id, path=f"{folder}/{name}" if folder else name,
            size=ref.size, sha256=ref.sha256, media_type=ref.media_type,
            chunks=lambda ref=ref: store.iter_file(env.tenant, ref)))
    return files


def document_unit(env: Envelope, tenant: Tenant, options: ArchiveOptions,
                  settings: TenantArchiveSettings, objects: list[str]) -> seda.Unit:
    """The ArchiveUnit describing one document and referencing its data objects."""
    title = render(options.title, env, tenant)
    if not title:
        raise ArchiveConfigError(f"archive title template {options.title!r} is empty for "
                                 f"document {env.id}", field="options.title")
    doc_type = _value_or_literal(options.document_type, env, tenant)
    rules = settings.rule_for(doc_type)
    when = document_date(options, env, tenant)
    keywords = []
    for ref in options.keywords:
        found, value = field_value(ref, env, tenant)
        for item in (value if isinstance(value, list) else [value]) if found else []:
            if item not in (None, ""):
                keywords.append(seda.Keyword(str(item), "subject"))
    originating = settings.originating_agency or settings.transferring_agency
    return seda.Unit(
        id=unit_id(env.id), title=title, level=options.description_level,
        description=render(options.description, env, tenant), keywords=keywords,
        document_type=doc_type, system_id=env.id,
        originating_agency=seda.Agency(originating.identifier, originating.name),
        start_date=when, end_date=when,
        access_rule=seda.Rule(rules.access_rule, when),
        appraisal_rule=seda.Rule(rules.appraisal_rule, when, rules.final_action),
        objects=objects)


def transfer(settings: TenantArchiveSettings, message_id: str, units: list[seda.Unit],
             objects: list[seda.DataObject], *, comment: str, document_type: str) -> seda.Transfer:
    """The ArchiveTransfer of ``units`` with the tenant's agencies, agreement and profile."""
    rules = settings.rule_for(document_type)
    first = units[0]
    return seda.Transfer(
        version=settings.seda_version, message_id=message_id, comment=comment,
        archival_agency=seda.Agency(settings.archival_agency.identifier),
        transferring_agency=seda.Agency(settings.transferring_agency.identifier),
        originating_agency=seda.Agency((settings.originating_agency
                                        or settings.transferring_agency).identifier),
        archival_agreement=settings.archival_agreement,
        archival_profile=rules.archival_profile or settings.archival_profile,
        service_level=settings.service_level,
        access_rule=first.access_rule, appraisal_rule=first.appraisal_rule,
        units=units, objects=objects)


def journal_document(env: Envelope, events: list[dict[str, Any]],
                     outputs: dict[str, dict[str, Any]]) -> bytes:
    """The document's journal as archived: its events so far and its steps' outputs."""
    body = {"document": env.id, "tenant": env.tenant, "flow": env.flow,
            "submitted_at": env.created_at.isoformat(), "producer": env.producer,
            "idempotency_key": env.idempotency_key, "metadata": env.metadata,
            "files": [f.model_dump(mode="json") for f in env.files],
            "events": events, "step_outputs": outputs,
            "written_at": datetime.now().astimezone().isoformat()}
    return json.dumps(body, indent=2, ensure_ascii=False, default=str).encode()

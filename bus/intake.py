"""Checks a submission must pass before a document starts (shared by SDK and intake)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from bus.flows import FlowRegistry
from bus.objectstore import ObjectStore
from bus.tenants import Tenant, TenantRegistry
from schemas.envelope import Envelope
from schemas.errors import DocumentError, first_error
from schemas.metadata import metadata_model
from schemas.personal import undeclared_nir
from schemas.text import check_file_name


class SubmissionError(DocumentError):
    """A submission is refused; ``field`` names what is wrong."""


def check_envelope(env: Envelope, flows: FlowRegistry, tenants: TenantRegistry) -> None:
    """Flow, tenant, metadata and file declarations (no store access)."""
    try:
        flow = flows.get(env.flow)
    except KeyError as exc:
        raise SubmissionError("flow", str(exc.args[0])) from None
    if env.tenant not in tenants:
        raise SubmissionError("tenant", f"tenant {env.tenant} is not configured on this bus")
    if not tenants.get(env.tenant).uses(env.flow):
        raise SubmissionError("flow", f"tenant {env.tenant} does not use flow {env.flow!r}")
    if not flow.admits(env.producer):
        raise SubmissionError("flow", f"flow {flow.name!r} is internal: its documents are "
                              f"made by {', '.join(flow.producers)} only, not by producer "
                              f"{env.producer!r}")
    if env.flow_version != flow.version:
        raise SubmissionError(
            "flow_version", f"flow {flow.name!r} is at version {flow.version}, "
            f"not {env.flow_version}")
    validate_metadata(flow.metadata_model, env.metadata)
    check_file_names(env)
    for i, ref in enumerate(env.files):
        if ref.size == 0:
            raise SubmissionError(f"files[{i}]", f"file {ref.name!r} is empty")


def check_file_names(env: Envelope) -> None:
    """Every file name is one the targets store as is (``schemas.text.check_file_name``):
    refused here, naming ``files[i].name``, rather than by a partner after retries."""
    for i, ref in enumerate(env.files):
        check_file_name_of(i, ref.name)


def check_file_name_of(index: int, name: str) -> None:
    """``SubmissionError`` naming ``files[index].name`` when ``name`` is not a plain name."""
    try:
        check_file_name(name)
    except ValueError as exc:
        raise SubmissionError(f"files[{index}].name", f"{exc}: {name!r}") from None


def check_own_siret(tenant: Tenant, field: str, siret: str, what: str) -> None:
    """A document speaks only for its tenant: ``SubmissionError`` naming ``field`` when
    ``siret`` (the document's ``what``) is not one of the tenant's establishments."""
    if not tenant.owns_siret(siret):
        listed = ", ".join(tenant.sirets) or f"SIREN {tenant.siren}"
        raise SubmissionError(field, f"{what} {siret!r} is not an establishment of tenant "
                              f"{tenant.siren} ({listed})")


async def check_flow(runtime: Any, env: Envelope, *, at_intake: bool = True) -> None:
    """Run the checks the flow's family registered (intake and the validate step call it):
    cross-field rules, tenant configuration, partner data such as the classification."""
    check = runtime.registry.checks.get(env.flow)
    if check is not None:
        await check(runtime, env, at_intake=at_intake)


def validate_metadata(model_name: str, metadata: dict) -> None:
    """Raise ``SubmissionError`` naming the first metadata field the model refuses, or
    holding a NIR although the model does not declare it personal (it would travel and
    be indexed in clear)."""
    model = metadata_model(model_name)
    try:
        model.model_validate(metadata)
    except ValidationError as exc:
        raise SubmissionError(*first_error(exc, "metadata")) from None
    if (path := undeclared_nir(model, metadata)) is not None:
        raise SubmissionError(path, "holds what looks like a social security number (NIR), "
                              "in a field the flow does not declare personal: refused")


def check_stored_files(env: Envelope, store: ObjectStore) -> None:
    """Every declared file is in the store with its declared size."""
    for i, ref in enumerate(env.files):
        size = store.stat_file(env.tenant, ref.sha256)
        if size is None:
            raise SubmissionError(f"files[{i}]", f"file {ref.name!r} ({ref.sha256}) is not "
                                  "in the object store: upload it before submitting")
        if size != ref.size:
            raise SubmissionError(f"files[{i}]", f"file {ref.name!r}: declared size {ref.size} "
                                  f"but the stored object has {size} bytes")

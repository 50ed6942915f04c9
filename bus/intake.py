"""Checks a submission must pass before a document starts (shared by SDK and intake)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_json

from bus.flows import FlowRegistry
from bus.objectstore import ObjectStore
from bus.tenants import Tenant, TenantRegistry
from schemas.envelope import Envelope
from schemas.errors import DocumentError, first_error
from schemas.flow import FileLimits, FlowDefinition
from schemas.metadata import metadata_model
from schemas.personal import undeclared_nir
from schemas.text import check_file_name

MAX_JSON_DEPTH = 20  # nesting of metadata objects and lists (no model goes deeper than 4)


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
    limits = flow_limits(flow, tenants.get(env.tenant))
    check_metadata_bounds(env.metadata, limits)
    check_file_limits(env, limits)
    validate_metadata(flow.metadata_model, env.metadata)
    check_file_names(env)
    for i, ref in enumerate(env.files):
        if ref.size == 0:
            raise SubmissionError(f"files[{i}]", f"file {ref.name!r} is empty")


def flow_limits(flow: FlowDefinition, tenant: Tenant) -> FileLimits:
    """The flow's limits, tightened by the tenant setting ``limits.<flow>`` (never
    loosened: a tenant's larger value is ignored)."""
    own = (tenant.settings.get("limits") or {}).get(flow.name) or {}
    try:
        wanted = FileLimits.model_validate(flow.limits.model_dump() | own)
    except ValidationError as exc:
        raise SubmissionError(*first_error(exc, f"tenant.settings.limits.{flow.name}")
                              ) from None
    return FileLimits(**{k: min(v, getattr(flow.limits, k))
                         for k, v in wanted.model_dump().items()})


def check_file_limits(env: Envelope, limits: FileLimits) -> None:
    """Number of files, each file's size and their total within ``limits``."""
    if len(env.files) > limits.max_files:
        raise SubmissionError("files", f"{len(env.files)} files, flow {env.flow!r} takes at "
                              f"most {limits.max_files}")
    for i, ref in enumerate(env.files):
        if ref.size > limits.max_file_bytes:
            raise SubmissionError(f"files[{i}]", f"file {ref.name!r} has {ref.size} bytes, "
                                  f"flow {env.flow!r} takes files of at most "
                                  f"{limits.max_file_bytes} bytes")
    total = sum(ref.size for ref in env.files)
    if total > limits.max_total_bytes:
        raise SubmissionError("files", f"{total} bytes in all, flow {env.flow!r} takes at "
                              f"most {limits.max_total_bytes} bytes per document")


def check_metadata_bounds(metadata: Any, limits: FileLimits, field: str = "metadata") -> None:
    """Metadata nested at most ``MAX_JSON_DEPTH`` levels, its JSON within the flow's
    ``max_metadata_bytes`` (a message always fits the broker once its files are stored)."""
    check_json_depth(metadata, field)
    size = len(to_json(metadata, fallback=str))  # as the broker encodes it (bus.broker)
    if size > limits.max_metadata_bytes:
        raise SubmissionError(field, f"{size} bytes of JSON, more than the "
                              f"{limits.max_metadata_bytes} allowed")


def check_json_depth(value: Any, field: str = "metadata", max_depth: int = MAX_JSON_DEPTH
                     ) -> None:
    """``SubmissionError`` naming ``field`` when objects/lists nest deeper than
    ``max_depth`` (walked without recursion: no ``RecursionError``)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else \
            item if isinstance(item, list | tuple) else ()
        if children and depth > max_depth:
            raise SubmissionError(field, f"nested deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children)


def loads_metadata(text: str | bytes, field: str = "metadata") -> dict[str, Any]:
    """The JSON object ``text`` (a metadata file or form field), bounded in depth;
    ``SubmissionError`` naming ``field`` if malformed, too deep or not an object."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise SubmissionError(field, f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SubmissionError(field, f"malformed JSON: {exc}") from None
    check_json_depth(value, field)
    if not isinstance(value, dict):
        raise SubmissionError(field, "must be a JSON object")
    return value
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

"""Each flow's archive mapping gives a valid SEDA description for each demo tenant."""

from __future__ import annotations

import pytest

from bus.flows import FlowRegistry
from bus.plugins import load_plugins
from bus.settings import Settings
from bus.tenants import TenantRegistry
from connectors.sae import seda
from schemas.archive import BatchOptions, TenantArchiveSettings
from schemas.envelope import Envelope, FileRef
from workers.archive import batch, mapping

load_plugins()  # the families register their metadata models, as the bus does at start

META = {
    "document": {"title": "Courrier", "category": "courrier", "keywords": ["a", "b"]},
    "acte": {"number": "DEL_42", "decision_date": "2026-11-02", "subject": "Budget",
             "classification": "7.1", "nature": 1},
    "payslip": {"period": "2026-11", "matricule": "A42"},
}


def _archive_steps() -> list[tuple[str, str, dict]]:
    flows = FlowRegistry.load()
    return [(f, s.name, s.options) for f in flows.names() for s in flows.get(f).steps
            if s.kind == "archive" and f in META]


@pytest.mark.parametrize(("flow", "step", "options"), _archive_steps())
def test_flow_mapping_builds_a_valid_transfer(flow: str, step: str, options: dict) -> None:
    tenants = TenantRegistry.load(Settings().tenants_path)
    for tenant in (t for t in tenants if t.uses(flow)):  # not the syndicate (no flows)
        settings = mapping.tenant_settings(tenant)
        env = Envelope(tenant=tenant.siren, flow=flow, metadata=META[flow], files=[
            FileRef(sha256="a" * 64, size=10, media_type="application/pdf", name="x.pdf")])
        opts = mapping.step_options(options, step)
        unit = mapping.document_unit(env, tenant, opts, settings, ["o-1"])
        assert unit.title and "{" not in unit.title
        obj = seda.DataObject(id="o-1", uri="content/x.pdf", filename="x.pdf", size=10,
                              digest="0" * 64)
        xml = seda.build_archive_transfer(mapping.transfer(
            settings, "T", [unit], [obj], comment="c", document_type=unit.document_type or ""))
        assert seda.validate(xml) == settings.seda_version
        rules = settings.rule_for(unit.document_type or "")
        assert f"<Rule>{rules.appraisal_rule}</Rule>" in xml.decode()


def test_missing_settings_and_fields_name_the_field() -> None:
    tenant = TenantRegistry.load(Settings().tenants_path).get("216900910")
    bare = tenant.model_copy(update={"settings": {}})
    with pytest.raises(mapping.ArchiveConfigError) as exc:
        mapping.tenant_settings(bare)
    assert exc.value.field == "tenant.settings.archive"
    broken = tenant.model_copy(update={"settings": {"archive": {"seda_version": "3.0"}}})
    with pytest.raises(mapping.ArchiveConfigError, match="seda_version"):
        mapping.tenant_settings(broken)
    opts = mapping.step_options({"document_type": "meta.author"}, "archive")
    env = Envelope(tenant=tenant.siren, flow="document", metadata={"title": "t"},
                   files=[FileRef(sha256="a" * 64, size=1, media_type="text/plain", name="a")])
    with pytest.raises(mapping.ArchiveConfigError) as exc:
        mapping.document_unit(env, tenant, opts, mapping.tenant_settings(tenant), [])
    assert exc.value.field == "metadata.author"
    # a field the producer left out but the metadata model defaults is found
    assert mapping.field_value("meta.category", env, tenant) == (True, "courrier")


def test_batch_limits_take_the_tighter_of_flow_and_tenant() -> None:
    settings = TenantArchiveSettings.model_validate({
        "archival_agency": {"identifier": "A"}, "transferring_agency": {"identifier": "B"},
        "batch": {"max_documents": 25, "max_wait_seconds": 2}})
    options = BatchOptions(key="meta.period", max_documents=500, max_bytes=10**6,
                           max_wait_seconds=30)
    assert batch.limits(options, settings) == (25, 10**6, 2)

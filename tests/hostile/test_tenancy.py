"""A tenant speaks only for itself: the ACTES sender is always the tenant, and a
document's SIRET outside the tenant is refused naming the field."""

from __future__ import annotations

import pytest

from bus.intake import SubmissionError, check_own_siret
from bus.settings import Settings
from bus.tenants import Tenant, TenantRegistry
from workers.actes.acte import actes_settings
from workers.common.demo import DEMO_SIRETS, DEMO_TENANTS

TENANTS = TenantRegistry.load(Settings().tenants_path)


def test_the_actes_sender_is_the_tenant_whatever_its_settings_say() -> None:
    city = TENANTS.get("216900910")
    forged = city.model_copy(update={"settings": city.settings | {
        "actes": city.settings["actes"] | {"siren": "214502494"}}})
    assert actes_settings(forged).siren == "216900910"


def test_demo_tenants_list_the_sirets_their_demo_documents_carry() -> None:
    for siren in DEMO_TENANTS:
        assert TENANTS.get(siren).sirets == [DEMO_SIRETS[siren]]


def test_a_foreign_siret_is_refused_naming_the_field() -> None:
    city = Tenant(siren="216900910", name="A", sirets=["21690091000011"])
    check_own_siret(city, "metadata.employer_siret", "21690091000011", "employer SIRET")
    with pytest.raises(SubmissionError) as refused:
        check_own_siret(city, "files[0].IdColl", "21450249400013", "collectivity")
    assert refused.value.field == "files[0].IdColl"
    assert "21450249400013" in str(refused.value) and "21690091000011" in str(refused.value)

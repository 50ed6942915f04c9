"""Tokens (hash, expiry, revocation, narrowing) and roles inherited down the entity tree."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bus.database import Database
from bus.identity import Identity, IdentityError, IdentityStore, Unauthenticated, narrow
from bus.identity_records import DatabaseIdentities, MemoryIdentities
from bus.operator import may_act
from bus.tenants import Tenant, TenantRegistry

SYNDICATE, CITY_A, CITY_B, OTHER = "200000008", "216900910", "214502494", "253514491"


class MemoryStore:
    """The three record calls the identity store makes on the object store."""

    def __init__(self) -> None:
        self.records: dict[str, bytes] = {}

    def put_json(self, key: str, value: Any) -> None:
        self.records[key] = json.dumps(value).encode()

    def get_json(self, key: str) -> Any | None:
        raw = self.records.get(key)
        return None if raw is None else json.loads(raw)

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.records if k.startswith(prefix))


@pytest.fixture()
def tenants() -> TenantRegistry:
    return TenantRegistry([
        Tenant(siren=SYNDICATE, name="Syndicat"),
        Tenant(siren=CITY_A, name="A", parent=SYNDICATE),
        Tenant(siren=CITY_B, name="B", parent=SYNDICATE),
        Tenant(siren=OTHER, name="Elsewhere")])


@pytest.fixture(params=["memory", "database"])
def ids(request: pytest.FixtureRequest, tenants: TenantRegistry) -> IdentityStore:
    """The identity store on its unit-test double and on a real PostgreSQL database."""
    if request.param == "memory":
        return IdentityStore(MemoryIdentities(), tenants)
    url = request.getfixturevalue("pg_url")
    return IdentityStore(DatabaseIdentities(Database(url)), tenants)


def test_the_secret_is_stored_only_as_its_sha256(ids: IdentityStore) -> None:
    ids.add_user("alice", CITY_A, "producer")
    secret, record = ids.create_token("alice", name="payroll")
    stored = json.dumps(ids.records.token(record["id"]))
    assert secret not in stored and secret.split(".")[1] not in stored
    assert json.loads(stored)["hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert "hash" not in ids.tokens()[0]
    who = ids.authenticate(secret)
    assert who.login == "alice" and who.token_id == record["id"]
    assert who.actor == f"alice (token {record['id']})"


def test_unknown_tampered_expired_and_revoked_tokens_are_refused(ids: IdentityStore) -> None:
    ids.add_user("alice", CITY_A, "operator")
    secret, record = ids.create_token("alice")
    for bad in (None, "", "Bearer x", secret[:-1] + ("A" if secret[-1] != "A" else "B")):
        with pytest.raises(Unauthenticated):
            ids.authenticate(bad)
    soon, rec = ids.create_token("alice", expires=datetime.now(UTC) + timedelta(hours=1))
    assert ids.authenticate(soon).login == "alice"
    rec["expires_at"] = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    ids.records.put_token(rec)
    with pytest.raises(Unauthenticated, match="expired"):
        ids.authenticate(soon)
    ids.revoke(record["id"])
    with pytest.raises(Unauthenticated, match="revoked"):
        ids.authenticate(secret)
    assert ids.tokens()[0]["revoked_at"] or ids.tokens()[1]["revoked_at"]


def test_bad_input_names_the_field(ids: IdentityStore) -> None:
    cases = [(lambda: ids.add_user("Alice Smith", CITY_A, "admin"), "login"),
             (lambda: ids.add_user("alice", "123456782", "admin"), "tenant"),
             (lambda: ids.add_user("alice", CITY_A, "root"), "role"),
             (lambda: ids.create_token("nobody"), "login"),
             (lambda: ids.revoke("0123456789abcdef"), "id")]
    for call, field in cases:
        with pytest.raises(IdentityError) as exc:
            call()
        assert exc.value.field == field
    ids.add_user("alice", CITY_A, "admin")
    with pytest.raises(IdentityError) as exc:
        ids.create_token("alice", expires=datetime(2020, 1, 1, tzinfo=UTC))
    assert exc.value.field == "expires"


def test_roles_reach_down_the_tree_never_up_or_across(ids: IdentityStore,
                                                      tenants: TenantRegistry) -> None:
    ids.add_user("synd", SYNDICATE, "admin")
    ids.add_user("clerk", CITY_A, "producer")
    synd = ids.authenticate(ids.create_token("synd")[0])
    clerk = ids.authenticate(ids.create_token("clerk")[0])
    assert synd.tenants_with("read", tenants) == {SYNDICATE, CITY_A, CITY_B}
    assert clerk.tenants_with("submit", tenants) == {CITY_A}
    assert not clerk.may("read", CITY_A, tenants) and clerk.may("read-own", CITY_A, tenants)
    assert not clerk.may("submit", SYNDICATE, tenants) and not clerk.may("submit", CITY_B,
                                                                        tenants)
    assert not synd.may("submit", CITY_A, tenants)  # admin is not producer
    assert clerk.reaches(tenants) == {CITY_A}


def test_a_token_narrows_its_user_and_never_widens(ids: IdentityStore,
                                                   tenants: TenantRegistry) -> None:
    ids.add_user("bob", CITY_A, "operator")
    ids.add_user("bob", CITY_A, "archivist")
    ids.add_user("bob", CITY_B, "producer")
    secret, _ = ids.create_token("bob", tenants=[CITY_A], roles=["archivist", "producer"])
    who = ids.authenticate(secret)
    assert who.grants == {CITY_A: frozenset({"archivist"})}
    assert narrow({CITY_A: ["operator"]}, {"tenants": None, "roles": ["admin"]}) == {}


def test_tenant_tree_refuses_unknown_parents_and_cycles(tmp_path: Path) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text(f'tenants:\n  - {{siren: "{CITY_A}", name: A, parent: "{CITY_B}"}}\n')
    with pytest.raises(ValueError, match=r"tenants\[0\]\.parent.*not configured"):
        TenantRegistry.load(path)
    path.write_text(f'tenants:\n  - {{siren: "{CITY_A}", name: A, parent: "{CITY_B}"}}\n'
                    f'  - {{siren: "{CITY_B}", name: B, parent: "{CITY_A}"}}\n')
    with pytest.raises(ValueError, match="cycle"):
        TenantRegistry.load(path)
    path.write_text(f'tenants:\n  - {{siren: "{CITY_A}", name: A, parent: "{CITY_A}"}}\n')
    with pytest.raises(ValueError, match="cycle"):
        TenantRegistry.load(path)


def test_the_demo_syndicate_is_above_both_demo_cities() -> None:
    demo = TenantRegistry.load(Path(__file__).resolve().parents[2] / "bus/dev/tenants.yaml")
    assert demo.descendants(SYNDICATE) == {SYNDICATE, CITY_A, CITY_B}
    assert demo.ancestors(CITY_A) == [CITY_A, SYNDICATE]


def test_a_dead_letter_of_no_tenant_needs_the_permission_on_every_tenant(
        tenants: TenantRegistry) -> None:
    city = Identity("op-a", None, {CITY_A: frozenset({"operator"})})
    syndicate = Identity("op-s", None, {SYNDICATE: frozenset({"operator"}),
                                        OTHER: frozenset({"operator"})})
    reader = Identity("ar-all", None, {SYNDICATE: frozenset({"archivist"}),
                                       OTHER: frozenset({"archivist"})})
    a_letter, undecodable = {"tenant": CITY_A}, {"tenant": None}
    assert may_act(city, a_letter, "replay", tenants)
    assert not may_act(city, {"tenant": CITY_B}, "read", tenants)
    assert not may_act(city, undecodable, "read", tenants)
    assert may_act(syndicate, undecodable, "discard", tenants)  # every tenant, inherited
    assert may_act(reader, undecodable, "read", tenants)
    assert not may_act(reader, undecodable, "replay", tenants)
    no_other = Identity("op-s2", None, {SYNDICATE: frozenset({"operator"})})
    assert not may_act(no_other, undecodable, "replay", tenants)  # OTHER is not below it


def test_a_token_name_is_one_line(ids: IdentityStore) -> None:
    ids.add_user("eve", "216900910", "producer")
    for name in ("ci\nadmin", "ci\x1b[2J", "x" * 201):
        with pytest.raises(IdentityError) as refused:
            ids.create_token("eve", name=name)
        assert refused.value.field == "name"
    assert ids.create_token("eve", name="intégration continue")[1]["name"]


def test_an_older_bus_s_object_store_identities_are_imported_once(
        pg_url: str, tenants: TenantRegistry) -> None:
    legacy = MemoryStore()
    old = IdentityStore(MemoryIdentities(), tenants)
    old.add_user("alice", CITY_A, "producer")
    secret, record = old.create_token("alice", name="payroll")
    legacy.put_json("identity/users/alice.json", old.user("alice"))
    legacy.put_json(f"identity/tokens/{record['id']}.json", old.records.token(record["id"]))
    records = DatabaseIdentities(Database(pg_url))
    assert records.import_legacy(legacy) == 2  # type: ignore[arg-type]
    ids = IdentityStore(records, tenants)
    assert ids.authenticate(secret).login == "alice"
    ids.revoke(record["id"])
    assert records.import_legacy(legacy) == 0  # type: ignore[arg-type]  # the database has its own now
    with pytest.raises(Unauthenticated, match="revoked"):
        ids.authenticate(secret)

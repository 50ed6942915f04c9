"""Connector secrets from the environment or a secret file (bus.tenants.resolve_secrets)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bus.tenants import ConnectorConfig, TenantRegistry, resolve_secrets

TENANT = "216900910"


def _tenants_file(tmp_path: Path, options: dict) -> Path:
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump({"tenants": [{
        "siren": TENANT, "name": "Ville", "connectors": {
            "s2low": {"type": "s2low", "options": {"url": "https://s2low.example", **options}},
        }}]}))
    return path


def test_a_clear_secret_is_kept_as_it_is() -> None:
    assert resolve_secrets({"login": "x", "password": "p"}, {}) == {"login": "x",
                                                                   "password": "p"}


def test_a_secret_from_an_environment_variable() -> None:
    options = {"client_id": "c", "client_secret_env": "PISTE_SECRET", "timeout": 30}
    assert resolve_secrets(options, {"PISTE_SECRET": "s3cr3t"}) == {
        "client_id": "c", "client_secret": "s3cr3t", "timeout": 30}


def test_a_secret_from_a_file_loses_its_final_newline_only(tmp_path: Path) -> None:
    secret = tmp_path / "smtp"
    secret.write_text("  pass word \n")
    assert resolve_secrets({"smtp_password_file": str(secret)}, {}) == {
        "smtp_password": "  pass word "}


def test_an_unset_variable_is_named() -> None:
    with pytest.raises(ValueError, match="password_env: environment variable DEMAT_PW is "
                                         "not set or empty"):
        resolve_secrets({"password_env": "DEMAT_PW"}, {"DEMAT_PW": ""})


def test_a_missing_or_empty_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"password_file: secret file .*absent: "
                                         "No such file"):
        resolve_secrets({"password_file": str(tmp_path / "absent")}, {})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match=r"password_file: secret file .*empty is empty"):
        resolve_secrets({"password_file": str(tmp_path / "empty")}, {})


def test_two_sources_of_one_secret_are_refused() -> None:
    with pytest.raises(ValueError, match="password, password_env: give only one"):
        resolve_secrets({"password": "a", "password_env": "B"}, {"B": "b"})


def test_a_source_that_is_not_a_name_is_refused() -> None:
    with pytest.raises(ValueError, match="key_password_env: expected a variable name"):
        resolve_secrets({"key_password_env": 42}, {})


def test_paths_that_are_not_secrets_are_left_alone(tmp_path: Path) -> None:
    options = {"cert_file": "/etc/c.pem", "key_file": "/etc/k.pem", "ca_file": "/etc/ca"}
    assert resolve_secrets(options, {}) == options


def test_the_tenants_file_resolves_every_connector_and_dumps_the_declared_form(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMAT_TEST_S2LOW_PW", "from-env")
    registry = TenantRegistry.load(_tenants_file(tmp_path, {"login": "l", "password_env":
                                                            "DEMAT_TEST_S2LOW_PW"}))
    connector = registry.get(TENANT).connectors["s2low"]
    assert connector.options["password"] == "from-env"
    assert "password_env" not in connector.options
    dumped = registry.get(TENANT).model_dump(mode="json")["connectors"]["s2low"]["options"]
    assert dumped["password_env"] == "DEMAT_TEST_S2LOW_PW" and "password" not in dumped
    assert "from-env" not in registry.get(TENANT).model_dump_json()


def test_the_tenants_file_names_the_connector_of_an_unset_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEMAT_TEST_UNSET", raising=False)
    path = _tenants_file(tmp_path, {"password_env": "DEMAT_TEST_UNSET"})
    with pytest.raises(ValueError) as refused:
        TenantRegistry.load(path)
    message = str(refused.value)
    assert str(path) in message and "connectors.s2low" in message
    assert "DEMAT_TEST_UNSET is not set" in message


def test_a_config_already_resolved_is_not_resolved_twice(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("p1")
    config = ConnectorConfig(type="webdav", options={"password_file": str(secret)})
    secret.write_text("p2")
    again = ConnectorConfig.model_validate(config)
    assert again.options["password"] == "p1"
    assert again.model_dump()["options"] == {"password_file": str(secret)}

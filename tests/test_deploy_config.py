"""The production deployment files: no default secret, Kafka locked per service group,
connector secrets out of the tenants file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bus.settings import Settings
from bus.tenants import SECRET_OPTIONS, TenantRegistry

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
SECRETS_DIR = "/etc/demat/secrets/"


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _bus_services() -> dict[str, dict]:
    return {n: s for n, s in _compose()["services"].items() if s.get("build")}


def test_no_variable_of_the_compose_file_has_a_default_secret() -> None:
    for name, default in re.findall(r"\$\{(\w+):?-([^}]*)\}", COMPOSE.read_text()):
        assert not re.search("PASSWORD|SECRET|KEY", name), (name, default)
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text()))
    assert {"DEMAT_DB_PASSWORD", "DEMAT_S3_ACCESS_KEY", "DEMAT_S3_SECRET_KEY"} <= required


def test_the_minio_console_listens_on_loopback_only() -> None:
    minio = _compose()["services"]["minio"]
    assert minio["ports"] == ["127.0.0.1:9001:9001"]


def test_every_bus_service_is_its_own_kafka_user_over_tls() -> None:
    grants = set(re.findall(r"^grant\s+(\S+)", (ROOT / "deploy/kafka/kafka-init.sh")
                            .read_text(), re.M))
    declared = _compose()["secrets"]
    services = _bus_services()
    assert {"intake", "router", "steps", "journal", "delays", "sealer", "webhooks"} <= \
        set(services)
    for name, service in services.items():
        env = service["environment"]
        assert env["DEMAT_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        assert env["DEMAT_KAFKA_USERNAME"] == f"demat-{name}"
        assert env["DEMAT_KAFKA_PASSWORD_FILE"] == f"/run/secrets/kafka-{name}"
        assert set(service["secrets"]) == {"kafka-ca.pem", f"kafka-{name}"}
        assert f"kafka-{name}" in declared and name in grants, name


def test_every_bus_services_settings_parse(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment each service gets (variables and secret files given) is accepted."""
    for name, service in _bus_services().items():
        secret = tmp_path / f"kafka-{name}"
        secret.write_text("pw\n")
        for key, value in service["environment"].items():
            value = re.sub(r"\$\{\w+:[?-][^}]*\}", "x", str(value))
            monkeypatch.setenv(key, value.replace("/run/secrets/", f"{tmp_path}/"))
        monkeypatch.delenv("DEMAT_KAFKA_CA_FILE")  # its TLS context: tested elsewhere
        settings = Settings()
        assert settings.kafka_security["sasl_plain_username"] == f"demat-{name}"
        assert settings.kafka_security["sasl_plain_password"] == "pw"
        assert settings.s3_keys == ("x", "x")


def test_server_properties_refuse_what_no_acl_allows() -> None:
    props = dict(line.split("=", 1) for line in
                 (ROOT / "deploy/kafka/server.properties").read_text().splitlines()
                 if line and not line.startswith("#"))
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert "PLAINTEXT" not in props["listener.security.protocol.map"].replace("SASL_", "")
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"


def test_the_deploy_tenants_file_holds_no_secret_and_loads(tmp_path: Path) -> None:
    text = (ROOT / "deploy/tenants.yaml").read_text()
    for tenant in yaml.safe_load(text)["tenants"]:
        for role, connector in tenant["connectors"].items():
            clear = set(SECRET_OPTIONS) & set(connector.get("options", {}))
            assert not clear, (tenant["siren"], role, clear)
    for name in set(re.findall(re.escape(SECRETS_DIR) + r"([\w.-]+)", text)):
        (tmp_path / name).write_text(f"secret of {name}\n")
    local = tmp_path / "tenants.yaml"
    local.write_text(text.replace(SECRETS_DIR, f"{tmp_path}/"))
    registry = TenantRegistry.load(local)
    sae = registry.get("216900910").connectors["sae"].options
    assert sae["password"] == "secret of 216900910-sae"


def test_every_worker_container_checks_its_own_group_health() -> None:
    for name, service in _bus_services().items():
        command = service["command"]
        if command[0] != "worker":
            continue
        check = service["healthcheck"]
        assert check["test"] == ["CMD", "demat", "health", *command[1:], "--ready"], name
        assert check["interval"] and check["start_period"], name

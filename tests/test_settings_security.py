"""Settings of the bus's access to Kafka and S3: TLS, SASL, credentials (parsing only)."""

from __future__ import annotations

import datetime as dt
import json
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from faststream.kafka.security import parse_security
from faststream.security import SASLScram512
from pydantic import ValidationError

from bus.broker import broker_security
from bus.s3identity import ensure_identities, read_credentials
from bus.settings import Settings

SCRAM = {"DEMAT_KAFKA_BOOTSTRAP": "kafka:9093", "DEMAT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
         "DEMAT_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "DEMAT_KAFKA_USERNAME": "demat-steps",
         "DEMAT_KAFKA_PASSWORD": "pw"}


def _settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def _ca_file(tmp_path: Path, cn: str = "demat test Kafka CA") -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path = tmp_path / "kafka-ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_plaintext_by_default_adds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, {"DEMAT_KAFKA_BOOTSTRAP": "k:9092"})
    assert settings.kafka_security == {}
    assert settings.kafka_options == {"bootstrap_servers": "k:9092"}
    assert broker_security(settings) is None


def test_scram_over_tls_with_a_ca_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = _ca_file(tmp_path)
    settings = _settings(monkeypatch, SCRAM | {"DEMAT_KAFKA_CA_FILE": str(ca)})
    options = settings.kafka_options
    context = options.pop("ssl_context")
    assert options == {"bootstrap_servers": "kafka:9093", "security_protocol": "SASL_SSL",
                       "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "demat-steps",
                       "sasl_plain_password": "pw"}
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    subjects = [dict(x[0] for x in c["subject"]) for c in context.get_ca_certs()]
    assert subjects == [{"commonName": "demat test Kafka CA"}]


def test_faststream_gets_the_same_security(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, SCRAM)
    security = broker_security(settings)
    assert isinstance(security, SASLScram512)
    parsed, ours = parse_security(security), settings.kafka_security
    assert {k: v for k, v in parsed.items() if k != "ssl_context"} == \
        {k: v for k, v in ours.items() if k != "ssl_context"}
    assert isinstance(parsed["ssl_context"], ssl.SSLContext)


def test_tls_without_sasl_uses_the_system_trust_store(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, {"DEMAT_KAFKA_SECURITY_PROTOCOL": "SSL"})
    security = settings.kafka_security
    assert security["security_protocol"] == "SSL" and "sasl_mechanism" not in security
    assert security["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert parse_security(broker_security(settings))["security_protocol"] == "SSL"


def test_the_password_may_come_from_a_file(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text("from-file\n")
    env = {k: v for k, v in SCRAM.items() if k != "DEMAT_KAFKA_PASSWORD"}
    settings = _settings(monkeypatch, env | {"DEMAT_KAFKA_PASSWORD_FILE": str(secret)})
    assert settings.kafka_security["sasl_plain_password"] == "from-file"
    secret.write_text("")
    with pytest.raises(ValueError, match=r"DEMAT_KAFKA_PASSWORD_FILE .* is empty"):
        settings.kafka_security  # noqa: B018


@pytest.mark.parametrize(("drop", "named"), [
    ("DEMAT_KAFKA_SASL_MECHANISM", "DEMAT_KAFKA_SASL_MECHANISM: required"),
    ("DEMAT_KAFKA_USERNAME", "DEMAT_KAFKA_USERNAME: required"),
    ("DEMAT_KAFKA_PASSWORD", "DEMAT_KAFKA_PASSWORD or DEMAT_KAFKA_PASSWORD_FILE: give one"),
])
def test_incomplete_sasl_names_what_is_missing(monkeypatch: pytest.MonkeyPatch, drop: str,
                                               named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        _settings(monkeypatch, {k: v for k, v in SCRAM.items() if k != drop})


def test_both_password_and_file_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="give one"):
        _settings(monkeypatch, SCRAM | {"DEMAT_KAFKA_PASSWORD_FILE": "/run/secrets/k"})


def test_sasl_settings_without_a_sasl_protocol_are_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="DEMAT_KAFKA_USERNAME is set but "
                                              "DEMAT_KAFKA_SECURITY_PROTOCOL is PLAINTEXT"):
        _settings(monkeypatch, {"DEMAT_KAFKA_USERNAME": "demat"})


def test_a_ca_file_without_tls_is_refused(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    env = SCRAM | {"DEMAT_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                   "DEMAT_KAFKA_CA_FILE": str(_ca_file(tmp_path))}
    with pytest.raises(ValidationError, match="DEMAT_KAFKA_CA_FILE is set but"):
        _settings(monkeypatch, env)


def test_an_unreadable_ca_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    settings = _settings(monkeypatch, SCRAM | {"DEMAT_KAFKA_CA_FILE": str(bad)})
    with pytest.raises(ValueError, match=r"DEMAT_KAFKA_CA_FILE .*ca\.pem: not a readable PEM"):
        settings.kafka_options  # noqa: B018


@pytest.mark.parametrize(("name", "value"), [("DEMAT_KAFKA_SECURITY_PROTOCOL", "TLS"),
                                             ("DEMAT_KAFKA_SASL_MECHANISM", "GSSAPI")])
def test_unknown_protocols_and_mechanisms_are_refused(monkeypatch: pytest.MonkeyPatch,
                                                      name: str, value: str) -> None:
    with pytest.raises(ValidationError, match=name.removeprefix("DEMAT_").lower()):
        _settings(monkeypatch, SCRAM | {name: value})


def test_configured_s3_keys_win(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, {"DEMAT_S3_ACCESS_KEY": "a", "DEMAT_S3_SECRET_KEY": "s"})
    assert settings.s3_keys == ("a", "s")


def test_half_configured_s3_keys_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, {"DEMAT_S3_ACCESS_KEY": "a"})
    with pytest.raises(RuntimeError, match="set both DEMAT_S3_ACCESS_KEY and "
                                           "DEMAT_S3_SECRET_KEY"):
        settings.s3_keys  # noqa: B018


def test_s3_keys_are_the_embedded_stores_else_an_error(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    with pytest.raises(RuntimeError, match="no S3 credentials: set DEMAT_S3_ACCESS_KEY"):
        settings.s3_keys  # noqa: B018
    identities = ensure_identities(tmp_path)
    (tmp_path / "stack.json").write_text(json.dumps({"s3_identities": str(identities)}))
    assert settings.s3_keys == read_credentials(identities)
    assert settings.s3_keys[0] == "demat" and len(settings.s3_keys[1]) >= 40

"""Runtime settings, from ``DEMAT_*`` environment variables (pydantic-settings).

When no broker, S3 endpoint or index database is configured, the bus uses the embedded
stack whose addresses ``demat`` wrote to ``<var_dir>/stack.json`` when it started it.
"""

from __future__ import annotations

import json
import ssl
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bus.s3identity import read_credentials


class Settings(BaseSettings):
    """Everything a bus process needs to know about its environment."""

    model_config = SettingsConfigDict(env_prefix="DEMAT_", extra="ignore")

    var_dir: Path = Path("var")
    kafka_bootstrap: str | None = None
    # Kafka client security (aiokafka): TLS (SSL, SASL_SSL: the CA file, else the system's
    # trust store) and SASL (SASL_PLAINTEXT, SASL_SSL: mechanism, username, password)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = \
        "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_username: str | None = None
    kafka_password: str | None = None
    kafka_password_file: Path | None = None  # instead of kafka_password (mounted secret)
    kafka_ca_file: Path | None = None
    s3_endpoint: str | None = None
    s3_access_key: str | None = None  # with s3_secret_key; else the embedded store's
    s3_secret_key: str | None = None
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    bucket: str = "demat"
    tenants_file: Path | None = None
    kek_file: Path | None = None  # JSON {siren: base64 256-bit key}; else keys under var/keys
    retention_file: Path | None = None  # YAML retention rules per flow and tenant (purge)
    extra_flows_dir: Path | None = None  # more flow definitions (site flows, benchmark)
    plugins: str = ""  # more flow-family modules, comma-separated (bus.plugins)
    topic_prefix: str = "demat"
    partitions: int = Field(default=4, ge=1)
    database_url: str | None = None  # the bus's PostgreSQL: index, document states
    state_cache_size: int = Field(default=20_000, ge=0)
    io_threads: int = Field(default=16, ge=1)  # threads (and S3 connections) per process
    step_concurrency: int = Field(default=64, ge=1)  # step tasks in flight per process
    # how long a fetch may wait on the broker for new records: the latency of every hop
    # (Tansu holds an idle fetch for all of it; Kafka answers as soon as records come)
    fetch_wait_ms: int = Field(default=20, ge=1)
    # how long a producer waits to group records into one request (each request is one
    # object write on a broker that keeps its log in S3, such as the embedded Tansu)
    linger_ms: int = Field(default=2, ge=0)
    log_level: str = "INFO"
    api_host: str = "127.0.0.1"  # demat serve / demat run: where the HTTP API listens
    api_port: int = Field(default=8080, ge=1, le=65535)
    api_workers: int = Field(default=1, ge=1)  # demat serve: processes (uvicorn workers)
    # requests per second and burst of each API token (or OpenID login), per API process
    # (0: no limit); callers that fail to authenticate spend their client address's
    api_rate: float = Field(default=50.0, ge=0)
    api_burst: int = Field(default=100, ge=1)
    api_anonymous_rate: float = Field(default=5.0, ge=0)
    api_anonymous_burst: int = Field(default=100, ge=1)
    # how long an API process trusts an authentication (the bound on revocation; 0: never)
    api_auth_cache_seconds: float = Field(default=5.0, ge=0)
    # audit journal (bus/audit): sealing, signing key, timestamping, search-key secret
    seal_interval_seconds: float | None = Field(default=None, gt=0)  # None: 5 s embedded, 300
    audit_key_file: Path | None = None  # Ed25519 PEM; default <var>/audit/bus-ed25519.pem
    tsa_url: str = "sim:tsa"  # RFC 3161 TSA (sim:tsa = the embedded simulator)
    tsa_ca_file: Path | None = None  # TSA trust anchor; default <var>/tsa/ca.pem (simulator)
    index_secret: str | None = None  # HMAC key of personal search keys; default <var>/audit/
    # OpenID Connect (bus/oidc.py): the API also accepts this provider's access tokens
    oidc_issuer: str | None = None
    oidc_audience: str = "urn:demat-bus:api"
    # people's login (bus/login.py): authorization code + PKCE with this registered client
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None  # none: a public client (PKCE alone)
    oidc_redirect_uri: str | None = None  # https://<bus>/v1/auth/callback, as registered
    oidc_scope: str = "openid email profile"
    oidc_login_claim: str = "email"  # the ID token / userinfo claim naming the local user
    oidc_session_minutes: int = Field(default=480, ge=5, le=7 * 24 * 60)

    # webhooks (bus/webhooks): back-off between attempts (seconds, the last one repeats),
    # when to give up (attempts or age), the receiver's answer timeout, subscription cache
    webhook_backoff_s: str = "1,5,30,120,600,1800,3600"
    webhook_max_attempts: int = Field(default=30, ge=1)
    webhook_max_age_s: float = Field(default=86_400, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_refresh_s: float = Field(default=2.0, ge=0)
    # attempts in flight to one subscription at a time: a hung receiver holds no more of
    # the service's slots; its other deliveries wait on a delay topic (no attempt counted)
    webhook_slots_per_subscription: int = Field(default=4, ge=1)
    webhook_busy_delay_s: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _kafka_security_is_whole(self) -> Settings:
        """SASL settings go with a SASL protocol and are complete; a CA file with TLS."""
        protocol = self.kafka_security_protocol
        given = [name for name in ("kafka_sasl_mechanism", "kafka_username", "kafka_password",
                                   "kafka_password_file") if getattr(self, name) is not None]
        if protocol.startswith("SASL_"):
            self._check_sasl()
        elif given:
            raise ValueError(f"{_env(given[0])} is set but DEMAT_KAFKA_SECURITY_PROTOCOL is "
                             f"{protocol} (SASL needs SASL_SSL or SASL_PLAINTEXT)")
        if self.kafka_ca_file is not None and not self.kafka_tls:
            raise ValueError(f"DEMAT_KAFKA_CA_FILE is set but DEMAT_KAFKA_SECURITY_PROTOCOL is "
                             f"{protocol} (TLS needs SSL or SASL_SSL)")
        return self

    def _check_sasl(self) -> None:
        with_protocol = f"with DEMAT_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}"
        for name in ("kafka_sasl_mechanism", "kafka_username"):
            if not getattr(self, name):
                raise ValueError(f"{_env(name)}: required {with_protocol}")
        if (self.kafka_password is None) == (self.kafka_password_file is None):
            raise ValueError("DEMAT_KAFKA_PASSWORD or DEMAT_KAFKA_PASSWORD_FILE: give one "
                             f"{with_protocol}")

    @property
    def kafka_tls(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    @property
    def kafka_secret(self) -> str | None:
        """The SASL password (``kafka_password``, else the content of its file)."""
        if self.kafka_password_file is None:
            return self.kafka_password
        try:
            secret = self.kafka_password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ValueError(f"DEMAT_KAFKA_PASSWORD_FILE {self.kafka_password_file}: "
                             f"{exc.strerror}") from exc
        if not secret:
            raise ValueError(f"DEMAT_KAFKA_PASSWORD_FILE {self.kafka_password_file} is empty")
        return secret

    def kafka_ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of the Kafka clients (``None`` without TLS): server certificate
        and host name checked against the CA file, else the system's trust store."""
        if not self.kafka_tls:
            return None
        try:
            return ssl.create_default_context(
                cafile=str(self.kafka_ca_file) if self.kafka_ca_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"DEMAT_KAFKA_CA_FILE {self.kafka_ca_file}: not a readable "
                             f"PEM CA file ({exc})") from exc

    @property
    def kafka_security(self) -> dict[str, Any]:
        """aiokafka keyword arguments of the configured security (none for PLAINTEXT)."""
        if self.kafka_security_protocol == "PLAINTEXT":
            return {}
        options: dict[str, Any] = {"security_protocol": self.kafka_security_protocol,
                                   "ssl_context": self.kafka_ssl_context()}
        if self.kafka_security_protocol.startswith("SASL_"):
            options |= {"sasl_mechanism": self.kafka_sasl_mechanism,
                        "sasl_plain_username": self.kafka_username,
                        "sasl_plain_password": self.kafka_secret}
        return options

    @property
    def kafka_options(self) -> dict[str, Any]:
        """aiokafka keyword arguments to reach the broker: bootstrap servers and security."""
        return {"bootstrap_servers": self.bootstrap, **self.kafka_security}

    @cached_property
    def stack_file(self) -> Path:
        return self.var_dir / "stack.json"

    def embedded(self) -> dict[str, str]:
        """Addresses of the embedded stack, or ``{}`` when none was started here."""
        try:
            return json.loads(self.stack_file.read_text())
        except (OSError, ValueError):
            return {}

    def _configured_or_embedded(self, value: str | None, key: str, what: str, env: str) -> str:
        """``value`` if set, else the embedded stack's ``key``; else an error naming ``env``."""
        value = value or self.embedded().get(key)
        if not value:
            raise RuntimeError(f"{what}: set {env} or start the embedded stack "
                               "(`demat stack up` or `make run`)")
        return value

    @property
    def bootstrap(self) -> str:
        """Kafka bootstrap servers (configured, else the embedded broker)."""
        return self._configured_or_embedded(self.kafka_bootstrap, "kafka",
                                            "no Kafka broker", "DEMAT_KAFKA_BOOTSTRAP")

    @property
    def s3(self) -> str:
        """S3 endpoint host:port (configured, else the embedded store)."""
        return self._configured_or_embedded(self.s3_endpoint, "s3",
                                            "no S3 store", "DEMAT_S3_ENDPOINT")

    @property
    def s3_keys(self) -> tuple[str, str]:
        """S3 access and secret key (configured, else the embedded store's identity)."""
        if self.s3_access_key or self.s3_secret_key:
            if not (self.s3_access_key and self.s3_secret_key):
                raise RuntimeError("S3 credentials: set both DEMAT_S3_ACCESS_KEY and "
                                   "DEMAT_S3_SECRET_KEY, or neither (the embedded store's)")
            return self.s3_access_key, self.s3_secret_key
        path = self._configured_or_embedded(None, "s3_identities", "no S3 credentials",
                                            "DEMAT_S3_ACCESS_KEY and DEMAT_S3_SECRET_KEY")
        return read_credentials(Path(path))

    @property
    def plugin_modules(self) -> list[str]:
        """The extra plug-in modules named by ``plugins``."""
        return [m.strip() for m in self.plugins.split(",") if m.strip()]

    @property
    def webhook_backoff(self) -> tuple[float, ...]:
        """The webhook back-off steps, seconds (``webhook_backoff_s``)."""
        try:
            steps = tuple(float(s) for s in self.webhook_backoff_s.split(",") if s.strip())
        except ValueError:
            steps = ()
        if not steps or min(steps) <= 0:
            raise ValueError(f"DEMAT_WEBHOOK_BACKOFF_S: {self.webhook_backoff_s!r} is not a "
                             "comma-separated list of positive seconds")
        return steps

    @property
    def tenants_path(self) -> Path:
        if self.tenants_file is not None:
            return self.tenants_file
        return Path(__file__).parent / "dev" / "tenants.yaml"

    @property
    def database(self) -> str:
        """PostgreSQL URL of the index (configured, else the embedded server)."""
        return self._configured_or_embedded(self.database_url, "database",
                                            "no index database", "DEMAT_DATABASE_URL")


def _env(field_name: str) -> str:
    return f"DEMAT_{field_name.upper()}"


def get_settings() -> Settings:
    """Settings read from the environment now (no caching: tests change it)."""
    return Settings()

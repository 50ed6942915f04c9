"""Runtime settings, from ``DEMAT_*`` environment variables (pydantic-settings).

When no broker, S3 endpoint or index database is configured, the bus uses the embedded
stack whose addresses ``demat`` wrote to ``<var_dir>/stack.json`` when it started it.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bus.dev.s3auth import read_credentials


class Settings(BaseSettings):
    """Everything a bus process needs to know about its environment."""

    model_config = SettingsConfigDict(env_prefix="DEMAT_", extra="ignore")

    var_dir: Path = Path("var")
    kafka_bootstrap: str | None = None
    s3_endpoint: str | None = None
    s3_access_key: str | None = None  # with s3_secret_key; else the embedded store's
    s3_secret_key: str | None = None
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    bucket: str = "demat"
    tenants_file: Path | None = None
    kek_file: Path | None = None  # JSON {siren: base64 256-bit key}; else keys under var/keys
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


def get_settings() -> Settings:
    """Settings read from the environment now (no caching: tests change it)."""
    return Settings()

"""Who calls the bus: local users with roles per tenant, and their API tokens.

Users and tokens are JSON records in the bus's database (``bus.identity_records``),
shared by every API node. A token's secret is shown once; only its SHA-256 is stored
(the secret holds 32 random bytes, so a plain digest is enough: there is nothing to
brute-force).
Roles granted on a tenant reach every tenant below it in the entity tree
(``Tenant.parent``: a syndicate's admin administers its member cities).
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import os
import re
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bus.identity_records import DatabaseIdentities, IdentityRecords
from bus.oidc import OidcError, OidcVerifier
from bus.tenants import TenantRegistry
from schemas.envelope import Envelope
from schemas.text import bad_character

PREFIX = "dmt_"
ROLES: dict[str, frozenset[str]] = {
    "producer": frozenset({"submit", "read-own"}),
    "operator": frozenset({"read", "replay", "discard", "cancel"}),
    "archivist": frozenset({"read", "journal", "export", "proofs", "audit"}),
    "admin": frozenset({"read", "journal", "export", "users", "tokens", "tenants",
                        "webhooks"}),
}
LOGIN = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")  # matched whole (fullmatch)
_TOKEN = re.compile(rf"{PREFIX}([0-9a-f]{{16}})\.([A-Za-z0-9_-]{{43}})")  # fullmatch


class IdentityError(ValueError):
    """Bad input about users or tokens; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class Unauthenticated(Exception):
    """No valid token: missing, unknown, expired or revoked (the message says which)."""


def now() -> datetime:
    return datetime.now(UTC)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Identity:
    """An authenticated caller: its login, token and effective roles per tenant."""

    login: str
    token_id: str | None
    grants: dict[str, frozenset[str]]  # tenant -> roles
    expires_at: datetime | None = None  # when the credential stops being valid, if it does

    @property
    def actor(self) -> str:
        """How the journal names this caller."""
        return f"{self.login} (token {self.token_id})" if self.token_id else self.login

    @property
    def rate_key(self) -> str:
        """Whose request budget a request spends: the API token's, or the OpenID
        subject's (each access token of one login shares it)."""
        if self.token_id and not self.token_id.startswith("oidc"):
            return f"token:{self.token_id}"
        return f"login:{self.login}"

    @property
    def producer(self) -> str:
        """The producer name of what this caller submits (idempotency keys are per producer)."""
        return f"api:{self.login}"

    def stamp(self, env: Envelope) -> Envelope:
        """``env`` as this caller submits it (producer and submitter named)."""
        return env.model_copy(update={"producer": self.producer, "submitted_by": self.actor})

    def roles_on(self, tenant: str, tenants: TenantRegistry) -> set[str]:
        """Roles on ``tenant``: granted on it or on any entity above it."""
        return {r for t in tenants.ancestors(tenant) for r in self.grants.get(t, ())}

    def may(self, permission: str, tenant: str, tenants: TenantRegistry) -> bool:
        return any(permission in ROLES[r] for r in self.roles_on(tenant, tenants))

    def tenants_with(self, permission: str, tenants: TenantRegistry) -> set[str]:
        """Every configured tenant on which this caller has ``permission``."""
        return {t.siren for t in tenants if self.may(permission, t.siren, tenants)}

    def reaches(self, tenants: TenantRegistry) -> set[str]:
        """Tenants on which this caller has any role."""
        return {t.siren for t in tenants if self.roles_on(t.siren, tenants)}


def parse_date(value: str, field: str = "expires") -> datetime:
    """An ISO date or datetime (UTC when naive)."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise IdentityError(field, f"expected an ISO date or datetime, got {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class IdentityStore:
    """Users and tokens, and the identity a bearer secret stands for."""

    def __init__(self, records: IdentityRecords, tenants: TenantRegistry,
                 oidc: OidcVerifier | None = None) -> None:
        self.records = records
        self.tenants = tenants
        self.oidc = oidc  # the provider whose access tokens also authenticate callers

    @classmethod
    def of(cls, runtime: Any, oidc: OidcVerifier | None = None) -> IdentityStore:
        """The bus's identities (in its database; an older bus's object-store records are
        imported the first time)."""
        records = DatabaseIdentities(runtime.database)
        records.import_legacy(runtime.store)
        return cls(records, runtime.tenants, oidc)

    # --- users -----------------------------------------------------------------

    def user(self, login: str) -> dict[str, Any] | None:
        if not LOGIN.fullmatch(login):
            return None
        return self.records.user(login)

    def users(self) -> list[dict[str, Any]]:
        return self.records.users()

    def add_user(self, login: str, tenant: str, role: str) -> dict[str, Any]:
        """Create ``login`` (if new) and grant it ``role`` on ``tenant``."""
        if not LOGIN.fullmatch(login):
            raise IdentityError("login", f"{login!r}: lower-case letters, digits, . _ @ - "
                                "(at most 64)")
        if tenant not in self.tenants:
            raise IdentityError("tenant", f"tenant {tenant} is not configured on this bus")
        if role not in ROLES:
            raise IdentityError("role", f"unknown role {role!r} (roles: {', '.join(ROLES)})")
        user = self.user(login) or {"login": login, "roles": {},
                                    "created_at": now().isoformat()}
        roles = set(user["roles"].get(tenant, [])) | {role}
        user["roles"][tenant] = sorted(roles)
        self.records.put_user(user)
        return user

    # --- tokens ----------------------------------------------------------------

    def create_token(self, login: str, *, name: str = "", expires: datetime | None = None,
                     tenants: list[str] | None = None, roles: list[str] | None = None
                     ) -> tuple[str, dict[str, Any]]:
        """A new token of ``login`` (narrowed to ``tenants``/``roles`` if given): its
        secret, to show once, and its stored record (which holds only the digest)."""
        if self.user(login) is None:
            raise IdentityError("login", f"no user {login!r} (demat users add)")
        if expires is not None and expires <= now():
            raise IdentityError("expires", f"{expires.isoformat()} is in the past")
        if len(name) > 200 or bad_character(name):
            raise IdentityError("name", "a token name is one line of at most 200 characters")
        for t in tenants or []:
            if t not in self.tenants:
                raise IdentityError("tenant", f"tenant {t} is not configured on this bus")
        for r in roles or []:
            if r not in ROLES:
                raise IdentityError("role", f"unknown role {r!r}")
        token_id = secrets.token_hex(8)
        secret = f"{PREFIX}{token_id}.{secrets.token_urlsafe(32)}"
        record = {"id": token_id, "login": login, "name": name, "hash": digest(secret),
                  "created_at": now().isoformat(),
                  "expires_at": expires.isoformat() if expires else None,
                  "revoked_at": None, "tenants": tenants, "roles": roles}
        self.records.put_token(record)
        return secret, record

    def token(self, token_id: str) -> dict[str, Any] | None:
        if not re.fullmatch(r"[0-9a-f]{16}", token_id):
            return None
        return self.records.token(token_id)

    def tokens(self, login: str | None = None) -> list[dict[str, Any]]:
        return [public(t) for t in self.records.tokens() if login is None or t["login"] == login]

    def revoke(self, token_id: str) -> dict[str, Any]:
        record = self.token(token_id)
        if record is None:
            raise IdentityError("id", f"no token {token_id!r}")
        if record["revoked_at"] is None:
            record["revoked_at"] = now().isoformat()
            self.records.put_token(record)
        return public(record)

    def authenticate(self, secret: str | None) -> Identity:
        """The identity a bearer secret stands for; ``Unauthenticated`` saying why not."""
        if not secret:
            raise Unauthenticated("a bearer token is required")
        match = _TOKEN.fullmatch(secret)
        if match is None and self.oidc is not None and secret.count(".") == 2:
            return self._from_provider(secret)
        record, user = self.records.token_and_user(match.group(1)) if match else (None, None)
        if record is None or not hmac.compare_digest(record["hash"], digest(secret)):
            raise Unauthenticated("unknown token")
        return self._of_token(record, user, record["id"])

    def of_token(self, token_id: str, via: str) -> Identity:
        """The identity of the token ``token_id`` (a session opened with it, ``via`` naming
        that session), as long as the token is valid: revoking it ends the session too."""
        record, user = self.records.token_and_user(token_id) \
            if re.fullmatch(r"[0-9a-f]{16}", token_id) else (None, None)
        if record is None:
            raise Unauthenticated("unknown token")
        return self._of_token(record, user, via)

    @staticmethod
    def _of_token(record: dict[str, Any], user: dict[str, Any] | None, via: str) -> Identity:
        if record["revoked_at"]:
            raise Unauthenticated(f"token {record['id']} was revoked")
        expires = parse_date(record["expires_at"]) if record["expires_at"] else None
        if expires is not None and expires <= now():
            raise Unauthenticated(f"token {record['id']} expired")
        if user is None:
            raise Unauthenticated(f"user {record['login']} no longer exists")
        return Identity(record["login"], via, narrow(user["roles"], record), expires)

    def _from_provider(self, access_token: str) -> Identity:
        """The caller an OpenID provider's access token names, with the roles its local
        user holds (the provider authenticates, the bus authorises)."""
        assert self.oidc is not None
        try:
            found = self.oidc.identity(access_token)
        except OidcError as exc:
            raise Unauthenticated(str(exc)) from None
        jti, exp = found.claims.get("jti"), found.claims.get("exp")
        return self.of_user(found.login, f"oidc:{jti}" if jti else "oidc",
                            datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float)
                            else None)

    def of_user(self, login: str, via: str, expires_at: datetime | None = None) -> Identity:
        """``login`` with all its user's roles, authenticated ``via`` a provider's token or
        a session (the provider authenticates, the bus authorises)."""
        user = self.user(login)
        if user is None:
            raise Unauthenticated(f"{login} has no user on this bus (demat users add)")
        return Identity(login, via, {t: frozenset(r) for t, r in user["roles"].items()},
                        expires_at)


def narrow(user_roles: dict[str, list[str]], token: dict[str, Any]) -> dict[str, frozenset[str]]:
    """The user's roles as the token limits them (a token never adds to its user)."""
    grants = {}
    for tenant, roles in user_roles.items():
        if token.get("tenants") is not None and tenant not in token["tenants"]:
            continue
        kept = {r for r in roles if token.get("roles") is None or r in token["roles"]}
        if kept:
            grants[tenant] = frozenset(kept)
    return grants


def public(record: dict[str, Any]) -> dict[str, Any]:
    """A token record without its digest."""
    return {k: v for k, v in record.items() if k != "hash"}


def os_actor() -> str:
    """``user@host`` of whoever runs the command."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def cli_actor(ids: IdentityStore) -> str:
    """Who a CLI command acts as: the ``DEMAT_TOKEN`` identity, else the OS user."""
    secret = os.environ.get("DEMAT_TOKEN")
    if not secret:
        return os_actor()
    return ids.authenticate(secret).actor


def cli_submitter(runtime: Any) -> str:
    """Who a CLI submission on ``runtime``'s bus is journaled as (``cli_actor``)."""
    return cli_actor(IdentityStore.of(runtime))

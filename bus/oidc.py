"""OpenID Connect access tokens: who calls the API when the syndicate runs a provider.

Applications get an access token from the provider (client credentials) and send it
to the API: a JWT access token (RFC 9068, as Keycloak and most providers issue); people
log in (``bus.login``: authorization code with PKCE) and then hold a session, their ID
token checked here too (``OidcVerifier.id_token``). ``OidcVerifier`` checks an access
token against the provider's published keys (discovery, then JWKS), its issuer, its
audience (the bus's API) and its lifetime, and names the caller by the first of
``login_claims`` it carries. Authorisation stays the bus's: the caller's roles are the
local user's of that login (``bus.identity``), so the provider authenticates and the
bus decides.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import jwt

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
              "EdDSA"]  # asymmetric only: never HS* (a shared secret) nor "none"
DISCOVERY_TTL_S = 3600.0


class OidcError(Exception):
    """The token is not one this bus accepts; the message says why (safe to show)."""


@dataclass(frozen=True)
class OidcIdentity:
    """The caller a valid token names."""

    login: str
    claims: dict[str, Any]


@dataclass
class OidcVerifier:
    """Checks access tokens of one provider (``issuer``) for one ``audience``."""

    issuer: str
    audience: str
    login_claims: tuple[str, ...] = ("preferred_username", "client_id", "sub")
    leeway_s: int = 30
    timeout_s: float = 10.0
    _discovery: dict[str, Any] | None = field(default=None, repr=False)
    _discovered_at: float = field(default=0.0, repr=False)
    _keys: jwt.PyJWKClient | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def identity(self, token: str) -> OidcIdentity:
        """The caller of ``token``; ``OidcError`` when it is not valid here."""
        try:
            key = self._jwks().get_signing_key_from_jwt(token)
            claims = jwt.decode(token, key.key, algorithms=ALGORITHMS, audience=self.audience,
                                issuer=self.issuer, leeway=self.leeway_s,
                                options={"require": ["exp", "iat", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise OidcError("the access token has expired") from None
        except jwt.InvalidAudienceError:
            raise OidcError(f"the access token is not for this API (audience "
                            f"{self.audience!r})") from None
        except jwt.InvalidIssuerError:
            raise OidcError(f"the access token was not issued by {self.issuer}") from None
        except (jwt.PyJWKClientError, jwt.InvalidTokenError) as exc:
            raise OidcError(f"invalid access token: {exc}") from None
        login = next((str(claims[c]) for c in self.login_claims if claims.get(c)), None)
        if login is None:
            raise OidcError(f"the access token names no caller (claims "
                            f"{', '.join(self.login_claims)})")
        return OidcIdentity(login, claims)

    def id_token(self, token: str, client_id: str, nonce: str) -> dict[str, Any]:
        """The claims of an ID token issued to ``client_id`` for the login that sent
        ``nonce`` (OpenID Connect Core 3.1.3.7); ``OidcError`` when it is not valid."""
        claims = self.signed(token, client_id, "ID token",
                             ["exp", "iat", "iss", "aud", "sub", "nonce"])
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != client_id:
            raise OidcError(f"the ID token was issued to {claims.get('azp')!r}, not to us")
        if not hmac.compare_digest(str(claims["nonce"]), nonce):
            raise OidcError("the ID token's nonce is not this login's")
        return claims

    def signed(self, token: str, audience: str, what: str, require: list[str]
               ) -> dict[str, Any]:
        """The claims of a JWT this provider signed for ``audience`` (ID token, userinfo)."""
        try:
            key = self._jwks().get_signing_key_from_jwt(token)
            return jwt.decode(token, key.key, algorithms=ALGORITHMS, audience=audience,
                              issuer=self.issuer, leeway=self.leeway_s,
                              options={"require": require})
        except jwt.ExpiredSignatureError:
            raise OidcError(f"the {what} has expired") from None
        except (jwt.PyJWKClientError, jwt.InvalidTokenError) as exc:
            raise OidcError(f"invalid {what}: {exc}") from None

    def discovery(self) -> dict[str, Any]:
        """The provider's OpenID configuration (kept an hour)."""
        with self._lock:
            if self._discovery is None or time.monotonic() - self._discovered_at > \
                    DISCOVERY_TTL_S:
                url = f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"
                try:
                    with urllib.request.urlopen(url, timeout=self.timeout_s) as resp:
                        found = json.loads(resp.read())
                except (OSError, ValueError) as exc:
                    raise OidcError(f"the OpenID provider {self.issuer} cannot be read: "
                                    f"{exc}") from None
                if found.get("issuer") != self.issuer or not found.get("jwks_uri"):
                    raise OidcError(f"{url} describes issuer {found.get('issuer')!r}, not "
                                    f"{self.issuer!r}")
                self._discovery, self._discovered_at = found, time.monotonic()
                self._keys = None
            return self._discovery

    def _jwks(self) -> jwt.PyJWKClient:
        uri = self.discovery()["jwks_uri"]
        with self._lock:
            if self._keys is None:
                self._keys = jwt.PyJWKClient(uri, cache_keys=True, lifespan=3600,
                                             timeout=int(self.timeout_s))
            return self._keys

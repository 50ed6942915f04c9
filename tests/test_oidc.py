"""OpenID Connect access tokens, checked against a real OpenID provider: the npm package
``oidc-provider`` run on Node.js (``tests/oidc/``, installed by ``make test``)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from bus.oidc import OidcError, OidcVerifier
from tests.oidc_support import oidc_provider

AUDIENCE = "urn:demat-bus:api"
CLIENT, SECRET = "rh-app", "rh-app-secret-for-tests-only"


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    clients = [{"client_id": CLIENT, "client_secret": SECRET, "scope": "api",
                "grant_types": ["client_credentials"], "redirect_uris": [],
                "response_types": []}]
    with oidc_provider(clients) as found:
        yield found


def _token(issuer: str, secret: str = SECRET) -> httpx.Response:
    return httpx.post(f"{issuer}/token", auth=(CLIENT, secret),
                      data={"grant_type": "client_credentials", "scope": "api"})


def test_an_application_token_names_its_client(issuer: str) -> None:
    token = _token(issuer).json()["access_token"]
    who = OidcVerifier(issuer, AUDIENCE).identity(token)
    assert who.login == CLIENT and who.claims["aud"] == AUDIENCE


def test_tokens_the_bus_must_refuse(issuer: str) -> None:
    assert _token(issuer, "wrong").status_code == 401  # the provider refuses the client
    token = _token(issuer).json()["access_token"]
    with pytest.raises(OidcError, match="not for this API"):
        OidcVerifier(issuer, "urn:another:api").identity(token)
    head, body, sig = token.split(".")
    forged = f"{head}.{body[:-4]}AAAA.{sig}"
    with pytest.raises(OidcError, match="invalid access token"):
        OidcVerifier(issuer, AUDIENCE).identity(forged)
    claims = jwt.decode(token, options={"verify_signature": False})
    own_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    self_signed = jwt.encode(claims, own_key, algorithm="RS256",
                             headers={"kid": jwt.get_unverified_header(token)["kid"]})
    with pytest.raises(OidcError, match="invalid access token"):
        OidcVerifier(issuer, AUDIENCE).identity(self_signed)
    expired = jwt.encode(claims | {"exp": claims["iat"] - 3600}, own_key, algorithm="RS256")
    with pytest.raises(OidcError):
        OidcVerifier(issuer, AUDIENCE).identity(expired)
    symmetric = jwt.encode(claims, "a-shared-secret-of-thirty-two-bytes!", algorithm="HS256")
    with pytest.raises(OidcError):
        OidcVerifier(issuer, AUDIENCE).identity(symmetric)


def test_a_provider_that_is_not_the_issuer_is_refused(issuer: str) -> None:
    token = _token(issuer).json()["access_token"]
    other = issuer.replace("127.0.0.1", "localhost")  # same server, another issuer name
    with pytest.raises(OidcError, match="describes issuer"):
        OidcVerifier(other, AUDIENCE).identity(token)


def test_the_provider_authenticates_and_the_bus_authorises(issuer: str) -> None:
    from bus.identity import IdentityStore, Unauthenticated
    from bus.identity_records import MemoryIdentities
    from bus.tenants import Tenant, TenantRegistry

    tenants = TenantRegistry([Tenant(siren="214502494", name="A"),
                              Tenant(siren="216900910", name="B")])
    ids = IdentityStore(MemoryIdentities(), tenants, OidcVerifier(issuer, AUDIENCE))
    token = _token(issuer).json()["access_token"]
    with pytest.raises(Unauthenticated, match="has no user on this bus"):
        ids.authenticate(token)  # authenticated by the provider, unknown to the bus
    ids.add_user(CLIENT, "214502494", "producer")
    who = ids.authenticate(token)
    assert who.login == CLIENT and who.token_id.startswith("oidc:")
    assert who.may("submit", "214502494", tenants)
    assert not who.may("submit", "216900910", tenants)
    with pytest.raises(Unauthenticated, match="not for this API"):
        IdentityStore(ids.records, tenants, OidcVerifier(issuer, "urn:x")).authenticate(token)

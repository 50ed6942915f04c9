"""People log in with OpenID Connect: authorization code with PKCE (RFC 7636, S256).

The bus is the relying party of the provider ``DEMAT_OIDC_ISSUER`` names (ProConnect, a
syndicate's Keycloak...), registered there as ``DEMAT_OIDC_CLIENT_ID`` with the redirect
URI ``DEMAT_OIDC_REDIRECT_URI``: a confidential client when ``DEMAT_OIDC_CLIENT_SECRET``
is set, a public one (PKCE alone) otherwise. ``PeopleLogin`` builds the authorization
request, exchanges the code and names the person by the claim ``DEMAT_OIDC_LOGIN_CLAIM``
of the verified ID token, or of the userinfo answer when the ID token lacks it (as
providers that follow OIDC Core 5.4 do). The bus's user of that login (``demat users
add``) holds the roles: the provider authenticates, the bus authorises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from bus.oidc import OidcError, OidcVerifier
from bus.sessions import PendingLogin, pkce_challenge
from bus.settings import Settings


class LoginRefused(Exception):
    """The login cannot finish; ``field`` names what failed, the message says why."""

    def __init__(self, field: str, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.field, self.message, self.status = field, message, status


@dataclass
class PeopleLogin:
    """The bus as an OpenID Connect client of one provider, for people."""

    provider: OidcVerifier
    client_id: str
    redirect_uri: str
    client_secret: str | None = None
    scope: str = "openid email profile"
    login_claim: str = "email"
    timeout_s: float = 10.0

    @classmethod
    def configured(cls, settings: Settings, provider: OidcVerifier | None
                   ) -> PeopleLogin | None:
        """The login ``settings`` configure, or ``None`` (issuer, client id and redirect
        URI are all needed)."""
        if provider is None or not settings.oidc_client_id or not settings.oidc_redirect_uri:
            return None
        scope = settings.oidc_scope if "openid" in settings.oidc_scope.split() \
            else f"openid {settings.oidc_scope}"
        return cls(provider, settings.oidc_client_id, settings.oidc_redirect_uri,
                   settings.oidc_client_secret or None, scope, settings.oidc_login_claim)

    @property
    def secure(self) -> bool:
        """Whether the bus is served over https (its cookies are then Secure)."""
        return self.redirect_uri.startswith("https://")

    def authorization_url(self, pending: PendingLogin) -> str:
        """Where to send the person's browser to log in."""
        endpoint = self._endpoint("authorization_endpoint")
        query = urlencode({"response_type": "code", "client_id": self.client_id,
                           "redirect_uri": self.redirect_uri, "scope": self.scope,
                           "state": pending.state, "nonce": pending.nonce,
                           "code_challenge": pkce_challenge(pending.verifier),
                           "code_challenge_method": "S256"})
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    def finish(self, code: str, pending: PendingLogin) -> tuple[str, dict[str, Any], str]:
        """Exchange ``code``, verify the ID token: the person's login, claims, ID token."""
        tokens = self._exchange(code, pending.verifier)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise LoginRefused("id_token", "the provider's token answer has no ID token")
        try:
            claims = self.provider.id_token(id_token, self.client_id, pending.nonce)
        except OidcError as exc:
            raise LoginRefused("id_token", str(exc)) from None
        if claims.get(self.login_claim) is None:
            claims = self._userinfo(tokens.get("access_token"), claims)
        return self._login(claims), claims, id_token

    def end_session_url(self, id_token: str | None) -> str | None:
        """The provider's logout page for this session (RP-initiated logout), if any."""
        endpoint = self.provider.discovery().get("end_session_endpoint")
        if not endpoint:
            return None
        query = {"client_id": self.client_id} | ({"id_token_hint": id_token} if id_token else {})
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(query)}"

    def _endpoint(self, name: str) -> str:
        try:
            found = self.provider.discovery().get(name)
        except OidcError as exc:
            raise LoginRefused("DEMAT_OIDC_ISSUER", str(exc), 502) from None
        if not found:
            raise LoginRefused("DEMAT_OIDC_ISSUER", f"the provider publishes no {name}", 502)
        return str(found)

    def _exchange(self, code: str, verifier: str) -> dict[str, Any]:
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": self.redirect_uri, "code_verifier": verifier}
        auth = None
        if self.client_secret is None:
            form["client_id"] = self.client_id  # a public client: PKCE is its proof
        elif "client_secret_basic" in self.provider.discovery().get(
                "token_endpoint_auth_methods_supported", ["client_secret_basic"]):
            auth = httpx.BasicAuth(self.client_id, self.client_secret)
        else:
            form |= {"client_id": self.client_id, "client_secret": self.client_secret}
        try:
            got = httpx.post(self._endpoint("token_endpoint"), data=form, auth=auth,
                             timeout=self.timeout_s, headers={"Accept": "application/json"})
            answer = got.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise LoginRefused("code", f"the provider's token endpoint failed: {exc}",
                               502) from None
        if got.status_code != 200 or not isinstance(answer, dict):
            reason = answer.get("error", got.status_code) if isinstance(answer, dict) else \
                got.status_code
            raise LoginRefused("code", f"the provider refused the code ({reason})")
        return answer

    def _userinfo(self, access_token: Any, claims: dict[str, Any]) -> dict[str, Any]:
        """The ID token's claims completed by the userinfo endpoint (same subject)."""
        if not isinstance(access_token, str):
            return claims
        try:
            got = httpx.get(self._endpoint("userinfo_endpoint"), timeout=self.timeout_s,
                            headers={"Authorization": f"Bearer {access_token}"})
            got.raise_for_status()
            if got.headers.get("content-type", "").startswith("application/jwt"):
                info = self.provider.signed(got.text.strip(), self.client_id, "userinfo",
                                            ["sub"])  # signed userinfo (as ProConnect)
            else:
                info = got.json()
        except (httpx.HTTPError, ValueError, OidcError) as exc:
            raise LoginRefused("userinfo", f"the provider's userinfo failed: {exc}",
                               502) from None
        if not isinstance(info, dict) or info.get("sub") != claims["sub"]:
            raise LoginRefused("userinfo", "the userinfo answer is not about the ID token's "
                               "subject")
        return info | claims

    def _login(self, claims: dict[str, Any]) -> str:
        value = claims.get(self.login_claim)
        if not isinstance(value, str) or not value:
            raise LoginRefused("DEMAT_OIDC_LOGIN_CLAIM", f"the provider did not say the "
                               f"person's {self.login_claim!r}", 403)
        if self.login_claim == "email" and claims.get("email_verified") is False:
            raise LoginRefused("email_verified", "the provider has not verified this "
                               "person's email", 403)
        return value.lower()

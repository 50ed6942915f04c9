"""People's sessions after an OpenID Connect login, and the logins under way.

Both are JSON records in the object store (``identity/``), so every API
node sees them. The browser holds only random secrets: the session cookie's, and the
``state`` of a login under way; records are keyed by their SHA-256, so whoever reads the
store cannot replay them. A login record is taken once (read, then deleted) when the
provider sends the person back; a session ends when it expires or is logged out.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bus.identity import digest, now, parse_date
from bus.objectstore import ObjectStore

SESSIONS = "identity/sessions/"
LOGINS = "identity/logins/"
LOGIN_TTL = timedelta(minutes=10)  # from the redirect to the provider to the way back
PRIVATE = ("csrf", "id_token")  # in a session's record, never listed


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE ``verifier`` (RFC 7636 4.2)."""
    raw = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class PendingLogin:
    """What the callback needs to finish a login it started."""

    state: str
    nonce: str
    verifier: str
    next: str


def session_ref(secret: str) -> str:
    """How the journal and the logs name a session (never its secret)."""
    return f"session:{digest(secret)[:16]}"


class SessionStore:
    """Logins under way and open sessions, in the object store."""

    def __init__(self, store: ObjectStore, lifetime: timedelta) -> None:
        self.store = store
        self.lifetime = lifetime

    # --- logins under way ------------------------------------------------------

    def begin(self, next_path: str) -> PendingLogin:
        """A new login: its state, nonce and PKCE verifier, kept until the way back."""
        pending = PendingLogin(secrets.token_urlsafe(32), secrets.token_urlsafe(32),
                               secrets.token_urlsafe(64), next_path)
        self.store.put_json(f"{LOGINS}{digest(pending.state)}.json", {
            "nonce": pending.nonce, "verifier": pending.verifier, "next": next_path,
            "expires_at": (now() + LOGIN_TTL).isoformat()})
        return pending

    def take_login(self, state: str) -> PendingLogin | None:
        """The login ``state`` names, once: ``None`` if unknown, used or expired."""
        key = f"{LOGINS}{digest(state)}.json"
        record = self.store.get_json(key)
        if record is None:
            return None
        self.store.delete_record(key)
        if parse_date(record["expires_at"]) <= now():
            return None
        return PendingLogin(state, record["nonce"], record["verifier"], record["next"])

    # --- sessions --------------------------------------------------------------

    def open(self, login: str, claims: dict[str, Any], id_token: str,
             token: str | None = None) -> tuple[str, dict[str, Any]]:
        """A new session of ``login``: its secret (for the cookie) and its record;
        ``token``: the id of the API token it was opened with (the console's sign-in),
        whose roles it keeps."""
        secret = secrets.token_urlsafe(32)
        record = {"login": login, "ref": session_ref(secret), "sub": claims.get("sub"),
                  "iss": claims.get("iss"), "created_at": now().isoformat(),
                  "expires_at": (now() + self.lifetime).isoformat(),
                  "csrf": secrets.token_urlsafe(32), "id_token": id_token, "token": token}
        self.store.put_json(self._key(secret), record)
        return secret, record

    def find(self, secret: str) -> dict[str, Any] | None:
        """The open session of a cookie's ``secret``, or ``None`` (an expired one is
        removed)."""
        if not secret or len(secret) > 100:
            return None
        record = self.store.get_json(self._key(secret))
        if record is None:
            return None
        if parse_date(record["expires_at"]) <= now():
            self.store.delete_record(self._key(secret))
            return None
        return record

    def close(self, secret: str) -> None:
        """End the session of ``secret`` (logout)."""
        self.store.delete_record(self._key(secret))

    def open_sessions(self, login: str | None = None) -> list[dict[str, Any]]:
        """Open sessions (of ``login`` only if given), oldest first, without their
        secrets' material (CSRF token, ID token); expired ones are removed on the way."""
        found = []
        for key in self.store.list_keys(SESSIONS):
            record = self.store.get_json(key)
            if record is None:
                continue
            if parse_date(record["expires_at"]) <= now():
                self.store.delete_record(key)
            elif login is None or record["login"] == login:
                found.append(_listed(record))
        return sorted(found, key=lambda r: r["created_at"])

    def end(self, ref: str | None = None, login: str | None = None) -> list[dict[str, Any]]:
        """End the session named ``ref`` (``session:…``) or every session of ``login``
        (an administrator's revocation); the sessions ended."""
        ended = []
        for key in self.store.list_keys(SESSIONS):
            record = self.store.get_json(key)
            if record is not None and (record["ref"] == ref or record["login"] == login):
                self.store.delete_record(key)
                ended.append(_listed(record))
        return ended

    @staticmethod
    def _key(secret: str) -> str:
        return f"{SESSIONS}{digest(secret)}.json"


def _listed(record: dict[str, Any]) -> dict[str, Any]:
    """A session's record as listings show it: without its CSRF and ID tokens."""
    return {k: v for k, v in record.items() if k not in PRIVATE}

"""Sessions and logins under way (``bus.sessions``), on an in-memory object store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bus.identity import digest
from bus.sessions import LOGINS, SessionStore, pkce_challenge
from tests.api.test_identity import MemoryStore


class Store(MemoryStore):
    def delete_record(self, key: str) -> None:
        self.records.pop(key, None)


@pytest.fixture()
def sessions() -> SessionStore:
    return SessionStore(Store(), timedelta(hours=1))  # type: ignore[arg-type]


def test_pkce_s256_as_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_a_login_is_taken_once_and_not_after_it_expires(sessions: SessionStore) -> None:
    pending = sessions.begin("/v1/documents")
    assert 43 <= len(pending.verifier) <= 128 and pending.nonce != pending.state
    assert not any(pending.state in k for k in sessions.store.records)  # keyed by digest
    assert sessions.take_login(pending.state) == pending
    assert sessions.take_login(pending.state) is None
    late = sessions.begin("/")
    key = f"{LOGINS}{digest(late.state)}.json"
    record = sessions.store.get_json(key)
    sessions.store.put_json(key, record | {"expires_at": datetime.now(UTC).isoformat()})
    assert sessions.take_login(late.state) is None and key not in sessions.store.records


def test_a_session_is_found_until_it_ends_or_expires(sessions: SessionStore) -> None:
    secret, record = sessions.open("alice@ville.fr", {"sub": "s1", "iss": "https://idp"}, "t")
    assert sessions.find(secret) == record and record["ref"] == f"session:{digest(secret)[:16]}"
    assert secret not in "".join(sessions.store.records)  # only its digest is stored
    assert sessions.find(secret + "x") is None and sessions.find("") is None
    sessions.close(secret)
    assert sessions.find(secret) is None
    secret, record = sessions.open("alice@ville.fr", {}, "t")
    key = f"identity/sessions/{digest(secret)}.json"
    sessions.store.put_json(key, record | {"expires_at": "2020-01-01T00:00:00+00:00"})
    assert sessions.find(secret) is None and key not in sessions.store.records


def test_an_administrator_lists_and_ends_open_sessions(sessions: SessionStore) -> None:
    alice, first = sessions.open("alice@ville.fr", {"iss": "https://idp"}, "id-token-a")
    _, second = sessions.open("alice@ville.fr", {}, "t")
    bob, third = sessions.open("bob@ville.fr", {}, "t")
    old, gone = sessions.open("carol@ville.fr", {}, "t")
    key = f"identity/sessions/{digest(old)}.json"
    sessions.store.put_json(key, gone | {"expires_at": "2020-01-01T00:00:00+00:00"})
    listed = sessions.open_sessions()
    assert [r["ref"] for r in listed] == [first["ref"], second["ref"], third["ref"]]
    assert key not in sessions.store.records  # the expired one was removed on the way
    assert all("csrf" not in r and "id_token" not in r for r in listed)
    assert [r["ref"] for r in sessions.open_sessions("bob@ville.fr")] == [third["ref"]]
    assert [r["ref"] for r in sessions.end(ref=third["ref"])] == [third["ref"]]
    assert sessions.find(bob) is None and sessions.end(ref=third["ref"]) == []
    assert len(sessions.end(login="alice@ville.fr")) == 2 and sessions.find(alice) is None
    assert sessions.open_sessions() == []

"""Where users and API tokens are kept: JSON records in the bus's database
(``identity_users``, ``identity_tokens``), and an in-memory double for unit tests.

Records written by an older bus in the object store (``identity/``) are imported once,
the first time a database holding no identity at all is used.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from bus.database import Database
from bus.objectstore import ObjectStore

LEGACY_USERS, LEGACY_TOKENS = "identity/users/", "identity/tokens/"
Record = dict[str, Any]
log = logging.getLogger(__name__)
_imported: set[str] = set()  # databases this process already imported into (or found full)


class IdentityRecords(Protocol):
    def user(self, login: str) -> Record | None: ...
    def users(self) -> list[Record]: ...
    def put_user(self, record: Record) -> None: ...
    def token(self, token_id: str) -> Record | None: ...
    def tokens(self) -> list[Record]: ...
    def put_token(self, record: Record) -> None: ...
    def token_and_user(self, token_id: str) -> tuple[Record | None, Record | None]: ...


class DatabaseIdentities:
    """Users and tokens in PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def user(self, login: str) -> Record | None:
        return self._one("SELECT record FROM identity_users WHERE login = %s", login)

    def users(self) -> list[Record]:
        return self._all("SELECT record FROM identity_users ORDER BY login")

    def put_user(self, record: Record) -> None:
        self.db.run(lambda db: db.execute(
            "INSERT INTO identity_users (login, record) VALUES (%s, %s) "
            "ON CONFLICT (login) DO UPDATE SET record = EXCLUDED.record",
            (record["login"], json.dumps(record))))

    def token(self, token_id: str) -> Record | None:
        return self._one("SELECT record FROM identity_tokens WHERE token_id = %s", token_id)

    def tokens(self) -> list[Record]:
        return self._all("SELECT record FROM identity_tokens ORDER BY token_id")

    def put_token(self, record: Record) -> None:
        self.db.run(lambda db: db.execute(
            "INSERT INTO identity_tokens (token_id, login, record) VALUES (%s, %s, %s) "
            "ON CONFLICT (token_id) DO UPDATE SET record = EXCLUDED.record",
            (record["id"], record["login"], json.dumps(record))))

    def token_and_user(self, token_id: str) -> tuple[Record | None, Record | None]:
        """A token and the user it belongs to, in one query."""
        row = self.db.run(lambda db: db.execute(
            "SELECT t.record, u.record FROM identity_tokens t LEFT JOIN identity_users u "
            "ON u.login = t.login WHERE t.token_id = %s", (token_id,)).fetchone())
        if row is None:
            return None, None
        return json.loads(row[0]), json.loads(row[1]) if row[1] is not None else None

    def import_legacy(self, store: ObjectStore) -> int:
        """Copy the object store's identity records here if this database has none
        (a bus upgraded from object-store identities), once per process and database;
        how many were copied."""
        if self.db.url in _imported:
            return 0
        if self.db.run(lambda db: db.execute(
                "SELECT EXISTS (SELECT 1 FROM identity_users) "
                "OR EXISTS (SELECT 1 FROM identity_tokens)").fetchone())[0]:
            _imported.add(self.db.url)
            return 0
        users = [r for k in store.list_keys(LEGACY_USERS) if (r := store.get_json(k))]
        tokens = [r for k in store.list_keys(LEGACY_TOKENS) if (r := store.get_json(k))]
        for record in users:
            self.put_user(record)
        for record in tokens:
            self.put_token(record)
        _imported.add(self.db.url)
        if users or tokens:
            log.info("imported %d users and %d tokens from the object store",
                     len(users), len(tokens))
        return len(users) + len(tokens)

    def _one(self, query: str, *args: Any) -> Record | None:
        row = self.db.run(lambda db: db.execute(query, args).fetchone())
        return None if row is None else json.loads(row[0])

    def _all(self, query: str) -> list[Record]:
        return [json.loads(r[0]) for r in self.db.run(lambda db: db.execute(query).fetchall())]


class MemoryIdentities:
    """Users and tokens in dictionaries (unit tests)."""

    def __init__(self) -> None:
        self.user_records: dict[str, Record] = {}
        self.token_records: dict[str, Record] = {}

    def user(self, login: str) -> Record | None:
        return _copy(self.user_records.get(login))

    def users(self) -> list[Record]:
        return [_copy(self.user_records[k]) for k in sorted(self.user_records)]

    def put_user(self, record: Record) -> None:
        self.user_records[record["login"]] = _copy(record)

    def token(self, token_id: str) -> Record | None:
        return _copy(self.token_records.get(token_id))

    def tokens(self) -> list[Record]:
        return [_copy(self.token_records[k]) for k in sorted(self.token_records)]

    def put_token(self, record: Record) -> None:
        self.token_records[record["id"]] = _copy(record)

    def token_and_user(self, token_id: str) -> tuple[Record | None, Record | None]:
        token = self.token(token_id)
        return token, self.user(token["login"]) if token else None


def _copy(record: Any) -> Any:
    """A deep copy, as a stored record would come back (JSON types only)."""
    return None if record is None else json.loads(json.dumps(record))

"""Producers' idempotency keys in the bus's database: the first document of each key.

A key belongs to a tenant and a producer (``producer\\0key``, hashed: keys may carry
business identifiers). ``claim`` inserts the key's row or returns the row already there,
in one statement: the primary key makes the database the one writer of each key, so
concurrent submissions with one key make one document, whichever door they came by (the
SDK and the API claim before sending, intake claims again when it admits: the same
document finds its own claim). A key whose document was not sent is released.
"""

from __future__ import annotations

import hashlib

from bus.database import Database
from bus.intake import SubmissionError
from schemas.envelope import Envelope

CLAIM = ("INSERT INTO idempotency_keys (tenant, key_hash, doc_id, fingerprint) "
         "VALUES (%s, %s, %s, %s) ON CONFLICT (tenant, key_hash) "
         "DO UPDATE SET tenant = idempotency_keys.tenant RETURNING doc_id, fingerprint")
FIND = "SELECT doc_id, fingerprint FROM idempotency_keys WHERE tenant = %s AND key_hash = %s"
RELEASE = "DELETE FROM idempotency_keys WHERE tenant = %s AND key_hash = %s AND doc_id = %s"


def key_hash(env: Envelope) -> str | None:
    """The stored form of the envelope's key (``None`` without one)."""
    if env.idempotency_key is None:
        return None
    return hashlib.sha256(f"{env.producer}\0{env.idempotency_key}".encode()).hexdigest()


class IdempotencyKeys:
    """Claim, look up and release idempotency keys."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def claim(self, env: Envelope) -> str | None:
        """Make ``env`` its key's document if the key is new. The first document's id if
        another has the key with the same content; ``None`` if ``env`` holds it or has
        no key; ``SubmissionError`` if the key's document has different content."""
        hashed = key_hash(env)
        if hashed is None:
            return None
        row = self.db.run(lambda db: db.execute(
            CLAIM, (env.tenant, hashed, env.id, env.fingerprint())).fetchone())
        return _first_other(env, row)

    def find(self, env: Envelope) -> str | None:
        """As ``claim``, without claiming a new key."""
        hashed = key_hash(env)
        if hashed is None:
            return None
        row = self.db.run(lambda db: db.execute(FIND, (env.tenant, hashed)).fetchone())
        return _first_other(env, row)

    def release(self, env: Envelope) -> None:
        """Give the key up if ``env`` holds it (its document was never sent)."""
        hashed = key_hash(env)
        if hashed is not None:
            self.db.run(lambda db: db.execute(RELEASE, (env.tenant, hashed, env.id)))


def _first_other(env: Envelope, row: tuple[str, str] | None) -> str | None:
    if row is None or row[0] == env.id:
        return None
    doc_id, fingerprint = row
    if fingerprint != env.fingerprint():
        raise SubmissionError("idempotency_key", f"key {env.idempotency_key!r} was already "
                              f"used by document {doc_id} with different content")
    return doc_id

"""Where the Pastell door keeps what the bus does not: each tenant's stable ``id_e``, and
one record per Pastell document (``id_d``): its fields and files while a draft, then the
bus documents it became (tables of migration 0005). The flux's personal fields (an
agent's name, e-mail addresses) are stored sealed under the tenant's key, never in
clear."""

from __future__ import annotations

import json
import secrets
import string
from datetime import UTC, datetime
from typing import Any

from bus.crypto import Keyring
from bus.database import Database
from bus.pastell.flux import FLUX
from bus.tenants import TenantRegistry

ID_ALPHABET = string.ascii_letters + string.digits
Record = dict[str, Any]
PURPOSE = "pastell-draft"
SEALED = "sealed"  # the record's key holding its sealed personal fields


def new_id_d() -> str:
    """The incumbent's document id: 7 random letters and digits."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(7))


def now_text() -> str:
    """A date as the incumbent writes them (``YYYY-MM-DD HH:MM:SS``, UTC here)."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


class PastellStore:
    """Entity numbers and Pastell documents in the bus's database."""

    def __init__(self, db: Database, keyring: Keyring) -> None:
        self.db = db
        self.keyring = keyring
        self._numbers: dict[str, int] = {}

    def _sealed(self, record: Record) -> Record:
        """The record as stored: its personal fields moved into one sealed value."""
        personal = FLUX[record["info"]["type"]].personal
        hidden = {k: v for k, v in record["data"].items() if k in personal}
        if not hidden:
            return record
        sealed = self.keyring.seal_json(record["tenant"], PURPOSE, record["info"]["id_d"],
                                        hidden)
        data = {k: v for k, v in record["data"].items() if k not in hidden}
        return record | {"data": data, SEALED: sealed}

    def _opened(self, text: str) -> Record:
        record = json.loads(text)
        if sealed := record.pop(SEALED, None):
            record["data"] |= self.keyring.open_json(record["tenant"], PURPOSE,
                                                     record["info"]["id_d"], sealed)
        return record

    def numbers(self, tenants: TenantRegistry) -> dict[str, int]:
        """SIREN -> ``id_e`` of every tenant; a tenant seen for the first time gets the
        next number (parents before their children), and keeps it."""
        known = {t.siren for t in tenants}
        if known <= self._numbers.keys():
            return self._numbers
        ordered = sorted(known, key=lambda s: (len(tenants.ancestors(s)), s))

        def number(db: Any) -> dict[str, int]:
            for siren in ordered:
                db.execute("INSERT INTO pastell_entities (siren) VALUES (%s) "
                           "ON CONFLICT (siren) DO NOTHING", (siren,))
            return {s: n for n, s in db.execute("SELECT id_e, siren FROM pastell_entities")}

        self._numbers = self.db.run(number)
        return self._numbers

    def get(self, id_d: str) -> Record | None:
        row = self.db.run(lambda db: db.execute(
            "SELECT record FROM pastell_documents WHERE id_d = %s", (id_d,)).fetchone())
        return None if row is None else self._opened(row[0])

    def put(self, record: Record) -> None:
        record["info"]["modification"] = now_text()
        self.db.run(lambda db: db.execute(
            "INSERT INTO pastell_documents (id_d, tenant, flux, modified, record, doc_id, "
            "cancel_id) VALUES (%s, %s, %s, now(), %s, %s, %s) ON CONFLICT (id_d) DO UPDATE "
            "SET modified = now(), record = EXCLUDED.record, doc_id = EXCLUDED.doc_id, "
            "cancel_id = EXCLUDED.cancel_id",
            (record["info"]["id_d"], record["tenant"], record["info"]["type"],
             json.dumps(self._sealed(record)), record.get("doc_id"), record.get("cancel_id"))))

    def of_bus_document(self, doc_id: str) -> Record | None:
        """The Pastell document a bus document was submitted for (or cancels)."""
        row = self.db.run(lambda db: db.execute(
            "SELECT record FROM pastell_documents WHERE doc_id = %s OR cancel_id = %s",
            (doc_id, doc_id)).fetchone())
        return None if row is None else self._opened(row[0])

    def delete(self, id_d: str) -> None:
        self.db.run(lambda db: db.execute("DELETE FROM pastell_documents WHERE id_d = %s",
                                          (id_d,)))

    def list(self, tenant: str, flux: str | None, offset: int, limit: int) -> list[Record]:
        """The tenant's documents (of ``flux`` if given), newest first."""
        sql = "SELECT record FROM pastell_documents WHERE tenant = %s"
        args: list[Any] = [tenant]
        if flux:
            sql += " AND flux = %s"
            args.append(flux)
        sql += " ORDER BY modified DESC OFFSET %s LIMIT %s"
        args += [offset, limit]
        rows = self.db.run(lambda db: db.execute(sql, args).fetchall())
        return [self._opened(r[0]) for r in rows]

    def claim_key(self, producer: str, key: str, id_d: str) -> str:
        """The ``id_d`` an ``Idempotency-Key`` of ``producer`` stands for: ``id_d`` if the
        key is new, else the document first created with it."""
        def claim(db: Any) -> str:
            db.execute("INSERT INTO pastell_idempotency (producer, key, id_d) VALUES "
                       "(%s, %s, %s) ON CONFLICT DO NOTHING", (producer, key, id_d))
            return db.execute("SELECT id_d FROM pastell_idempotency WHERE producer = %s "
                              "AND key = %s", (producer, key)).fetchone()[0]
        return self.db.run(claim)

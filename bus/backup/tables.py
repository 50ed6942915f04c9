"""The bus's PostgreSQL tables that nothing rebuilds, to CSV files and back.

Backed up: every table of the schema except the index's (``events``, ``documents``,
``search_keys``: ``demat audit reindex`` rebuilds them from the sealed journal) and
alembic's version table (a restore migrates the target first). So document states,
dead letters, idempotency keys, receipts, identities and the Pastell door's tables are
kept, and a table a later migration adds is kept too without a change here.
"""

from __future__ import annotations

import csv
import io
from typing import IO

import psycopg
from psycopg import sql

from bus import index_migrations
from bus.backup.manifest import CHUNK, Backup, BackupError, Writer
from bus.database import migrate
from connectors.frames import read_chunks

REBUILT = frozenset({"events", "documents", "search_keys"})  # the index: from the journal
SKIPPED = REBUILT | {"alembic_version"}


def kept_tables(db: psycopg.Connection) -> list[str]:
    rows = db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                      "ORDER BY tablename").fetchall()
    return [r[0] for r in rows if r[0] not in SKIPPED]


def dump_tables(url: str, writer: Writer) -> dict[str, int]:
    """Each kept table to ``tables/<name>.csv`` (header line first), read in one
    repeatable-read transaction (one consistent picture); rows per table."""
    counts = {}
    with psycopg.connect(url) as db:
        db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        for table in kept_tables(db):
            counts[table] = db.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
            with db.cursor().copy(sql.SQL("COPY {} TO STDOUT (FORMAT csv, HEADER)").format(
                    sql.Identifier(table))) as copy:
                writer.write_stream(f"tables/{table}.csv", (bytes(b) for b in copy),
                                    rows=counts[table])
    return counts


def revision(url: str) -> str | None:
    return index_migrations.current(url)


def nonempty_tables(url: str) -> list[str]:
    """Tables of the target (migrated first) that already hold rows, the index's too."""
    migrate(url)
    with psycopg.connect(url) as db:
        names = [*kept_tables(db), *sorted(REBUILT)]
        return [t for t in names if db.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})")
                                                .format(sql.Identifier(t))).fetchone()[0]]


def load_tables(url: str, backup: Backup) -> dict[str, int]:
    """Copy every ``tables/*.csv`` of the backup into the (migrated, empty) target in one
    transaction, then move each serial column's sequence past its largest value."""
    migrate(url)
    counts = {}
    with psycopg.connect(url) as db, db.transaction():
        present = set(kept_tables(db))
        for item in backup.under("tables/"):
            table = item.path.removeprefix("tables/").removesuffix(".csv")
            if table not in present:
                raise BackupError(f"{backup.path(item.path)}: table {table} does not exist "
                                  "in the target database (a newer bus made this backup?)")
            with backup.open(item.path) as fh:
                counts[table] = _copy_in(db, table, fh)
            _advance_sequences(db, table)
    return counts


def _copy_in(db: psycopg.Connection, table: str, fh: IO[bytes]) -> int:
    """Stream one CSV file (its header line names the columns) into ``table``."""
    first = fh.readline()
    header = next(csv.reader(io.StringIO(first.decode())), [])
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in header)
    with db.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, HEADER)").format(
            sql.Identifier(table), columns)) as copy:
        copy.write(first)
        for chunk in read_chunks(fh, CHUNK):
            copy.write(chunk)
    return db.execute(sql.SQL("SELECT count(*) FROM {}").format(
        sql.Identifier(table))).fetchone()[0]


def _advance_sequences(db: psycopg.Connection, table: str) -> None:
    rows = db.execute(
        "SELECT column_name, pg_get_serial_sequence(quote_ident(%s), column_name) "
        "FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s",
        (table, table)).fetchall()
    for column, sequence in rows:
        if sequence:
            db.execute(sql.SQL("SELECT setval(%s, GREATEST(COALESCE(MAX({}), 0), 1), "
                               "MAX({}) IS NOT NULL) FROM {}").format(
                sql.Identifier(column), sql.Identifier(column), sql.Identifier(table)),
                (sequence,))

"""Alembic environment: migrate on the connection ``upgrade`` passes, under a lock."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from bus.index_migrations import LOCK_KEY

connection = context.config.attributes["connection"]
context.configure(connection=connection, transactional_ddl=True)
with context.begin_transaction():
    # concurrent starts: one migrates, the others wait here and then find it done
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    context.run_migrations()

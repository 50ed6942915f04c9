"""Alembic migrations of the PostgreSQL index (``bus.index``), applied at start.

``upgrade(url)`` brings the database to the newest revision. It is idempotent and safe
when several processes start at once: ``env.py`` holds a transaction-level advisory lock
while it reads the version and migrates, so the others wait, then find nothing to do.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

HERE = Path(__file__).parent
HEAD = "0006"  # the newest revision under versions/ (tests/test_index.py checks it)
# pg_advisory_xact_lock key of the index migrations (any constant of our own)
LOCK_KEY = 0x64656D6174  # "demat"


def upgrade(url: str, revision: str = "head") -> None:
    """Apply every migration up to ``revision`` to the database at ``url``."""
    # lazy: Alembic and SQLAlchemy take half a second to import, and a database already
    # at HEAD (every start but the first) never needs them
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(url),
                           poolclass=NullPool)
    config = Config()
    config.set_main_option("script_location", str(HERE))
    try:
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def head() -> str:
    """The newest revision, as Alembic reads it from ``versions/``."""
    from alembic.config import Config  # lazy: see upgrade
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(HERE))
    return ScriptDirectory.from_config(config).get_current_head() or ""


def current(url: str) -> str | None:
    """The revision the database is at (``None`` before the first migration)."""
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('alembic_version')").fetchone()
        if exists is None or exists[0] is None:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None

"""Users and API tokens (they were objects in the object store, ``identity/``).

``identity_users`` holds one JSON record per login, ``identity_tokens`` one per token
(its secret's digest, never the secret): authenticating a bearer token is one query.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"

TABLES = """
CREATE TABLE identity_users (login TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE identity_tokens (
    token_id TEXT PRIMARY KEY, login TEXT NOT NULL, record TEXT NOT NULL
);
CREATE INDEX identity_tokens_login ON identity_tokens (login);
"""


def upgrade() -> None:
    op.execute(TABLES)


def downgrade() -> None:
    op.execute("DROP TABLE identity_tokens; DROP TABLE identity_users")

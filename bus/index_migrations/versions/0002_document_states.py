"""Document states: the router's record of each document (it was in the object store).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"

TABLE = """
CREATE TABLE document_states (
    doc_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, state TEXT NOT NULL,
    record TEXT NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
"""


def upgrade() -> None:
    op.execute(TABLE)


def downgrade() -> None:
    op.execute("DROP TABLE document_states")

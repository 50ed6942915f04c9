"""Idempotency keys and the API's receipts (both were objects in the object store).

``idempotency_keys`` holds the first document of each producer's key, one row per key:
its primary key makes the database the one arbiter of concurrent submissions.
``api_receipts`` holds what the HTTP door accepted until the router has the document.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"

TABLES = """
CREATE TABLE idempotency_keys (
    tenant TEXT NOT NULL, key_hash TEXT NOT NULL, doc_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, key_hash)
);
CREATE TABLE api_receipts (
    doc_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, record TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
"""


def upgrade() -> None:
    op.execute(TABLES)


def downgrade() -> None:
    op.execute("DROP TABLE api_receipts; DROP TABLE idempotency_keys")

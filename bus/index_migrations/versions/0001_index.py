"""The index: journal events, documents' latest state, dead letters, search keys.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None

TABLES = """
CREATE TABLE events (
    event_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL, seq INTEGER NOT NULL,
    tenant TEXT, flow TEXT, type TEXT NOT NULL, state TEXT NOT NULL, step TEXT,
    at TIMESTAMPTZ NOT NULL, actor TEXT NOT NULL, detail JSONB NOT NULL
);
CREATE INDEX events_doc ON events (doc_id, seq);
CREATE TABLE documents (
    doc_id TEXT PRIMARY KEY, tenant TEXT, flow TEXT, state TEXT NOT NULL, step TEXT,
    seq INTEGER NOT NULL, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX documents_tenant ON documents (tenant, flow, state, updated_at);
CREATE INDEX documents_created ON documents (created_at DESC);
CREATE TABLE dead_letters (
    dlq_id TEXT PRIMARY KEY, doc_id TEXT, tenant TEXT, flow TEXT, step TEXT,
    error_class TEXT NOT NULL, message TEXT NOT NULL, retryable BOOLEAN NOT NULL,
    attempts INTEGER NOT NULL, at TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL DEFAULT 'open', status_by TEXT, status_reason TEXT,
    body JSONB NOT NULL
);
CREATE INDEX dead_letters_doc ON dead_letters (doc_id);
CREATE INDEX dead_letters_status ON dead_letters (status, at DESC);
CREATE TABLE search_keys (
    doc_id TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (name, value, doc_id)
);
CREATE INDEX search_keys_doc ON search_keys (doc_id);
"""


def upgrade() -> None:
    op.execute(TABLES)


def downgrade() -> None:
    op.execute("DROP TABLE search_keys, dead_letters, documents, events")

"""The Pastell-compatible door (``bus.api.pastell``): entity numbers and drafts.

``pastell_entities`` gives each tenant (SIREN) a stable ``id_e``, numbered on first sight;
``pastell_documents`` holds one JSON record per Pastell document (``id_d``): its fields
and files while it is a draft, then the bus document(s) it became.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"

TABLES = """
CREATE TABLE pastell_entities (id_e SERIAL PRIMARY KEY, siren TEXT NOT NULL UNIQUE);
CREATE TABLE pastell_documents (
    id_d TEXT PRIMARY KEY, tenant TEXT NOT NULL, flux TEXT NOT NULL,
    modified TIMESTAMPTZ NOT NULL, record TEXT NOT NULL,
    doc_id TEXT, cancel_id TEXT  -- the bus documents it became (submission, cancellation)
);
CREATE INDEX pastell_documents_tenant ON pastell_documents (tenant, flux, modified);
CREATE INDEX pastell_documents_doc ON pastell_documents (doc_id);
CREATE INDEX pastell_documents_cancel ON pastell_documents (cancel_id);
CREATE TABLE pastell_idempotency (
    producer TEXT NOT NULL, key TEXT NOT NULL, id_d TEXT NOT NULL,
    PRIMARY KEY (producer, key)
);
"""


def upgrade() -> None:
    op.execute(TABLES)


def downgrade() -> None:
    op.execute("DROP TABLE pastell_idempotency; DROP TABLE pastell_documents; "
                "DROP TABLE pastell_entities")

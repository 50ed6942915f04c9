"""Indexes for the documents list (the console's and ``GET /v1/documents``): a tenant's
documents newest first, all of them or of one flow and state, read from the index in
order (no sort of every matching row).

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"

INDEXES = """
CREATE INDEX documents_tenant_created ON documents (tenant, created_at DESC);
CREATE INDEX documents_flow_state_created ON documents (tenant, flow, state, created_at DESC);
"""


def upgrade() -> None:
    op.execute(INDEXES)


def downgrade() -> None:
    op.execute("DROP INDEX documents_flow_state_created; DROP INDEX documents_tenant_created")

"""Leases for the reaper, and the parent of a child execution.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from flowrt.storage.schema import Id, UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("executions") as table:
        table.add_column(sa.Column("lease_until", UtcDateTime, nullable=True))
        table.add_column(sa.Column("parent_id", Id, nullable=True))
    op.create_index("ix_executions_parent", "executions", ["parent_id"])


def downgrade() -> None:
    op.drop_index("ix_executions_parent", "executions")
    with op.batch_alter_table("executions") as table:
        table.drop_column("parent_id")
        table.drop_column("lease_until")

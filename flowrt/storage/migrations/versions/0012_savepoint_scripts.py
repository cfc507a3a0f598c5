"""Which script each savepoint was made under: a short hash of the source its flow ran.

An execution moved onto a corrected script (`flowrt restore --script`, `flowrt upgrade`)
keeps its earlier savepoints, made under the script before; `savepoints.script` says which.
NULL on rows written before 0012: they ran under the execution's only source.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("savepoints") as table:
        table.add_column(sa.Column("script", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("savepoints") as table:
        table.drop_column("script")

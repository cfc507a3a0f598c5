"""Signatures bound to each row's place: executions, savepoints and registered flows.

Rows written before it have none and are refused until `flowrt db resign` signs them.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TABLES = ("executions", "savepoints", "named")


def upgrade() -> None:
    for name in _TABLES:
        with op.batch_alter_table(name) as table:
            table.add_column(sa.Column("signature", sa.LargeBinary(20), nullable=True))


def downgrade() -> None:
    for name in _TABLES:
        with op.batch_alter_table(name) as table:
            table.drop_column("signature")

"""Worker deaths counted per savepoint, and the worker a suspect's step runs alone on.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("executions") as table:
        table.add_column(sa.Column("crashes", sa.Integer, nullable=False, server_default="0"))
        table.add_column(sa.Column("suspect_on", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("executions") as table:
        table.drop_column("suspect_on")
        table.drop_column("crashes")

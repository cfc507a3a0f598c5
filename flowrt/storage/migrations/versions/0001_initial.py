"""Initial schema: executions, savepoints, logs and named objects.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from flowrt.storage.schema import Id, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "executions",
        sa.Column("id", Id, primary_key=True),
        sa.Column("flow_name", sa.String(200), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("head_id", Id, nullable=True),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("outputs", sa.JSON, nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("error_line", sa.Integer, nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("wake_at", UtcDateTime, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("ended_at", UtcDateTime, nullable=True),
        sa.Column("archived_at", UtcDateTime, nullable=True),
    )
    op.create_index("ix_executions_status", "executions", ["status"])
    op.create_index("ix_executions_created_at", "executions", ["created_at"])
    op.create_table(
        "savepoints",
        sa.Column("id", Id, primary_key=True),
        sa.Column("execution_id", Id, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("parent_id", Id, nullable=True),
        sa.Column("call", sa.String(40), nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("digest", sa.LargeBinary(8), nullable=False),
        sa.Column("answer", sa.LargeBinary, nullable=True),
        sa.Column("restored", sa.Integer, nullable=False, server_default="0"),
        sa.Column("variables", sa.JSON, nullable=True),
        sa.Column("reads", sa.LargeBinary, nullable=True),
    )
    op.create_index("ix_savepoints_execution_seq", "savepoints", ["execution_id", "seq"])
    op.create_table(
        "logs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("execution_id", Id, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_logs_execution", "logs", ["execution_id", "id"])
    op.create_table(
        "named",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("value", sa.JSON, nullable=True),
        sa.Column("content", sa.LargeBinary, nullable=True),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    for table in ("named", "logs", "savepoints", "executions"):
        op.drop_table(table)

"""What the rest of the Cloudomation Flow-API needs: execution names, messages, setting locks.

- executions.name: the name given at start or by `this.save(name=...)` (NULL: the flow's).
- executions.waits_on: what a waiting execution waits for besides children (a message's
  answer, a setting's lock), so that the reaper can wake it if the direct wake-up was lost.
- named.holder, named.held_at: the execution holding a setting's lock.
- messages: what an execution asked people (`system.message`) and their answers.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

from flowrt.storage.schema import Id, UtcDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("executions") as table:
        table.add_column(sa.Column("name", sa.String(200), nullable=True))
        table.add_column(sa.Column("waits_on", sa.String(240), nullable=True))
    with op.batch_alter_table("named") as table:
        table.add_column(sa.Column("holder", Id, nullable=True))
        table.add_column(sa.Column("held_at", UtcDateTime, nullable=True))
    op.create_index("ix_named_holder", "named", ["holder"])
    op.create_table(
        "messages",
        sa.Column("id", Id, primary_key=True),
        sa.Column("execution_id", Id, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("message_type", sa.String(40), nullable=False),
        sa.Column("body", sa.JSON, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("response", sa.JSON, nullable=True),
        sa.Column("responded_at", UtcDateTime, nullable=True),
    )
    op.create_index("ix_messages_execution", "messages", ["execution_id"])


def downgrade() -> None:
    op.drop_index("ix_messages_execution", table_name="messages")
    op.drop_table("messages")
    op.drop_index("ix_named_holder", table_name="named")
    with op.batch_alter_table("named") as table:
        table.drop_column("held_at")
        table.drop_column("holder")
    with op.batch_alter_table("executions") as table:
        table.drop_column("waits_on")
        table.drop_column("name")

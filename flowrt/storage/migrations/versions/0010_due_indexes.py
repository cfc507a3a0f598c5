"""Partial indexes of the rows the periodic queries look for: due sleeps, and held executions.

Running executions have an index of their own keyed on nothing a step changes. No index
covers a column a step writes every time (lease_until, version, head_id, updated_at): a
step's UPDATE then stays a heap-only (HOT) update on PostgreSQL.

With them the reaper's pass, a worker's lease renewals and its release cost in proportion
to the executions that are due or held, not to how many sleep (see storage/schema.py).
A plain CREATE INDEX holds off writes to `executions` while it builds: run this upgrade
while no worker runs, or create the indexes CONCURRENTLY by hand first (same names).

Revision ID: 0010
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0004"
branch_labels = None
depends_on = None

# name: (predicate, columns on PostgreSQL, columns on SQLite), as in storage/schema.py,
# which says why the columns differ.
INDEXES = {
    "ix_executions_waiting": ("status = 'WAITING'", ["wake_at"], ["status", "wake_at"]),
    "ix_executions_running": ("status = 'RUNNING'", ["status"], ["status"]),
    "ix_executions_worker": ("worker IS NOT NULL", ["worker"], ["worker"]),
}


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for name, (where, postgresql_columns, sqlite_columns) in INDEXES.items():
        predicate = sa.text(where)
        op.create_index(
            name,
            "executions",
            sqlite_columns if sqlite else postgresql_columns,
            postgresql_where=predicate,
            sqlite_where=predicate,
            if_not_exists=True,
        )


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, "executions", if_exists=True)

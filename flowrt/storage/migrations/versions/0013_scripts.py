"""Each distinct flow source stored once: a `scripts` table by SHA-256, executions point at it.

Before, every execution row held its own copy of its flow's whole source. Now
`executions.script` is the SHA-256 (hex) of the source and `scripts` holds each text once;
`executions.source` stays, nullable, for rows nobody migrated (written by hand, say), and
is NULL on every row this migration moves. Nothing is re-signed: an execution's signature
binds the text, which is the same. The downgrade puts each execution's text back.

Revision ID: 0013
Revises: 0012
"""

import hashlib

import sqlalchemy as sa
from alembic import op

from flowrt.clock import utc_now
from flowrt.storage.schema import UtcDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_executions = sa.table(
    "executions",
    sa.column("source", sa.Text),
    sa.column("script", sa.String(64)),
)
_scripts = sa.table(
    "scripts",
    sa.column("hash", sa.String(64)),
    sa.column("source", sa.Text),
    sa.column("created_at", UtcDateTime),
)


def upgrade() -> None:
    op.create_table(
        "scripts",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    with op.batch_alter_table("executions") as table:
        table.add_column(sa.Column("script", sa.String(64), nullable=True))
        table.alter_column("source", existing_type=sa.Text, nullable=True)
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        # In the database, one pass each: a query per distinct source would read every row
        # once per source. PostgreSQL's UTF-8 text hashes as Python's `source_hash` does.
        digest = "encode(sha256(convert_to(source, 'UTF8')), 'hex')"
        conn.exec_driver_sql(
            f"INSERT INTO scripts (hash, source, created_at) SELECT {digest}, source, now() "
            "FROM executions WHERE source IS NOT NULL GROUP BY source ON CONFLICT DO NOTHING"
        )
        conn.exec_driver_sql(
            f"UPDATE executions SET script = {digest}, source = NULL WHERE source IS NOT NULL"
        )
        return
    now = utc_now()
    distinct = sa.select(_executions.c.source).where(_executions.c.source.is_not(None)).distinct()
    for source in conn.scalars(distinct).all():
        digest = hashlib.sha256(source.encode(errors="surrogatepass")).hexdigest()
        conn.execute(_scripts.insert().values(hash=digest, source=source, created_at=now))
        conn.execute(
            _executions.update()
            .where(_executions.c.source == source)
            .values(script=digest, source=None)
        )


def downgrade() -> None:
    conn = op.get_bind()
    text = sa.select(_scripts.c.source).where(_scripts.c.hash == _executions.c.script)
    conn.execute(
        _executions.update()
        .where(_executions.c.source.is_(None))
        .values(source=text.scalar_subquery())
    )
    with op.batch_alter_table("executions") as table:
        table.alter_column("source", existing_type=sa.Text, nullable=False)
        table.drop_column("script")
    op.drop_table("scripts")

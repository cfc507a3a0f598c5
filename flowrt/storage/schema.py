"""The tables, as SQLAlchemy Core metadata; migrations/ creates and evolves them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("flowrt stores timezone-aware timestamps only")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


Id = sa.Uuid(as_uuid=False)

executions = sa.Table(
    "executions",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("flow_name", sa.String(200), nullable=False),
    # The source, on rows written before 0013 only (or by hand); else NULL and `script` says
    # which: the `scripts` row of that hash. Records always carry the text (storage/scripts.py).
    sa.Column("source", sa.Text, nullable=True),
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
    # Until when the worker in `worker`, or a step message in a queue, answers for the
    # execution; past it the reaper sends the step again (see Runtime.reap).
    sa.Column("lease_until", UtcDateTime, nullable=True),
    sa.Column("parent_id", Id, nullable=True),
    # Worker deaths counted against the execution at its head savepoint (reset by progress),
    # and the worker its step runs alone on while it is a suspect (see flowrt/isolation.py).
    sa.Column("crashes", sa.Integer, nullable=False, server_default="0"),
    sa.Column("suspect_on", sa.String(200), nullable=True),
    # Signs what a worker runs and trusts of the row (see flowrt/seals.py); NULL before 0004.
    sa.Column("signature", sa.LargeBinary(20), nullable=True),
    # The execution's name (Cloudomation's `name=`); NULL reads as the flow's name (0011).
    sa.Column("name", sa.String(200), nullable=True),
    # What a WAITING execution with no wake_at waits for besides its children (0011):
    # "message:ID" for an answer, "lock:NAME" for a setting's lock. The reaper wakes it
    # once that is there, should the direct wake-up have been lost.
    sa.Column("waits_on", sa.String(240), nullable=True),
    # The SHA-256 (hex) of the execution's source: the `scripts` row holding it (0013).
    sa.Column("script", sa.String(64), nullable=True),
    sa.Index("ix_executions_status", "status"),
    sa.Index("ix_executions_created_at", "created_at"),
    sa.Index("ix_executions_parent", "parent_id"),
)

# What the periodic queries (the reaper, heartbeats, a stopping worker) look for, written
# once and repeated verbatim in their WHERE clauses, so that each reads a partial index of
# the rows that are due or held, never the sleeping ones: SQLite uses a partial index only
# when the WHERE clause repeats each of its terms, and PostgreSQL only when the predicate
# is implied by literals, not by parameters (a prepared statement's generic plan).
RUNNING = executions.c.status == sa.literal_column("'RUNNING'")
WAITING = executions.c.status == sa.literal_column("'WAITING'")
HELD = executions.c.worker.is_not(None)

# name: (predicate, columns on PostgreSQL, columns on SQLite). PostgreSQL takes out of the
# index condition what the predicate implies (the status), so the time must lead there;
# SQLite keeps no statistics and prefers the index that matches more columns, so the status
# leads there, or the plain status index would win and read every sleeping row.
PARTIAL_INDEXES = {
    # Waiting executions by wake-up time: the reaper reads the sleeps that are due (a range,
    # however many sleep) and the parents with no wake-up time (waiting for children).
    "ix_executions_waiting": (WAITING, ("wake_at",), ("status", "wake_at")),
    # Running executions, for the reaper to check their leases. Not keyed on lease_until:
    # a step writes it every time, and an indexed column would make every step's UPDATE a
    # non-HOT one on PostgreSQL, writing an entry into every index of the table.
    "ix_executions_running": (RUNNING, ("status",), ("status",)),
    # Executions a worker holds: its lease renewals, and its release when it stops.
    "ix_executions_worker": (HELD, ("worker",), ("worker",)),
}


def _add_partial_indexes() -> None:
    for name, (where, *columns) in PARTIAL_INDEXES.items():
        for dialect, names in zip(("postgresql", "sqlite"), columns, strict=True):
            index = sa.Index(
                name, *(executions.c[n] for n in names), postgresql_where=where, sqlite_where=where
            )
            index.ddl_if(dialect=dialect)


_add_partial_indexes()

# Each distinct flow source once, by its SHA-256 (0013): executions point at theirs. Not
# signed itself: the text an execution runs is bound to it by the execution's signature
# (see flowrt/seals.py), and a row whose text does not hash to its key is never cached.
scripts = sa.Table(
    "scripts",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

savepoints = sa.Table(
    "savepoints",
    metadata,
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
    sa.Column("signature", sa.LargeBinary(20), nullable=True),
    # A short hash of the source the savepoint was made under (0012; see script_hash).
    sa.Column("script", sa.String(16), nullable=True),
    sa.Index("ix_savepoints_execution_seq", "execution_id", "seq"),
)

logs = sa.Table(
    "logs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("execution_id", Id, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("line", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Index("ix_logs_execution", "execution_id", "id"),
)

named = sa.Table(
    "named",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("value", sa.JSON, nullable=True),
    sa.Column("content", sa.LargeBinary, nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("signature", sa.LargeBinary(20), nullable=True),
    # The execution holding the lock of this setting (setting.acquire), and since when (0011).
    sa.Column("holder", Id, nullable=True),
    sa.Column("held_at", UtcDateTime, nullable=True),
    sa.Index("ix_named_holder", "holder"),
)

# Messages an execution sends to people (system.message) and their answers (0011).
messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("execution_id", Id, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("message_type", sa.String(40), nullable=False),
    # The form: a JSON schema of the answer expected, or text to show.
    sa.Column("body", sa.JSON, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("response", sa.JSON, nullable=True),
    sa.Column("responded_at", UtcDateTime, nullable=True),
    sa.Index("ix_messages_execution", "execution_id"),
)

"""Setting locks in the SQL store: at most one execution holds a setting's lock at a time.

The holder is `named.holder`. A lock is free when that is NULL, or names an execution that has
ended (or no longer exists): an execution's end releases its locks right after it is stored,
and should that release be lost, the lock is free all the same. Taking and giving back a lock
read its row locked (`SELECT ... FOR UPDATE`) and then the holder's status in a statement of
their own: on PostgreSQL that statement sees every commit made before the row lock was granted,
so two executions contending on two workers can never both hold it. SQLite takes its write
lock at BEGIN, which serialises them anyway.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from flowrt.status import Status
from flowrt.storage import scripts
from flowrt.storage.base import ExecutionRecord
from flowrt.storage.rows import is_uuid
from flowrt.storage.schema import WAITING, executions, named

LOCK_PREFIX = "lock:"  # executions.waits_on of an execution waiting for a setting's lock
_UNENDED = (Status.RUNNING.value, Status.WAITING.value, Status.PAUSED.value)


class LockStatements:
    """The `Store` methods of setting locks on a SQLAlchemy engine; `SqlStore` inherits them."""

    engine: sa.Engine
    _insert: Any

    def acquire_lock(self, name: str, execution_id: str, now: datetime) -> str | None:
        create = self._insert(named).values(
            kind="setting", name=name, value=None, content=None, updated_at=now
        )
        with self.engine.begin() as conn:
            conn.execute(create.on_conflict_do_nothing())
            holder = _locked_holder(conn, name)
            if holder == execution_id:
                return None
            if holder is not None:
                return holder
            conn.execute(
                named.update().where(_setting(name)).values(holder=execution_id, held_at=now)
            )
        return None

    def release_lock(self, name: str, execution_id: str) -> str | None:
        with self.engine.begin() as conn:
            holder = _locked_holder(conn, name)
            if holder is not None and holder != execution_id:
                return holder
            free = named.update().where(_setting(name), named.c.holder.is_not(None))
            conn.execute(free.values(holder=None, held_at=None))
        return holder

    def release_locks(self, execution_id: str) -> list[str]:
        if not is_uuid(execution_id):
            return []
        statement = (
            named.update()
            .where(named.c.kind == "setting", named.c.holder == execution_id)
            .values(holder=None, held_at=None)
            .returning(named.c.name)
        )
        with self.engine.begin() as conn:
            return sorted(conn.scalars(statement))

    def lock_holder(self, name: str) -> str | None:
        with self.engine.begin() as conn:
            return conn.scalar(_LIVE_HOLDER.where(_setting(name)))  # type: ignore[no-any-return]

    def list_lock_waiters(self, name: str) -> list[ExecutionRecord]:
        c = executions.c
        query = (
            sa.select(executions)
            .where(WAITING, c.waits_on == LOCK_PREFIX + name)
            .order_by(c.updated_at, c.id)
        )
        with self.engine.begin() as conn:
            return scripts.records(conn, conn.execute(query))

    def wake_lock_waiters(self, now: datetime) -> int:
        with self.engine.begin() as conn:
            return conn.execute(_WAKE_LOCK_WAITERS, {"now": now}).rowcount


def _setting(name: str) -> Any:
    return sa.and_(named.c.kind == "setting", named.c.name == name)


def _locked_holder(conn: sa.Connection, name: str) -> str | None:
    # Lock the setting's row first, then read its holder's status in a statement of its own:
    # read after the row lock was granted, it sees the holder of any acquire that beat us.
    query = sa.select(named.c.holder).where(_setting(name)).with_for_update()
    holder = conn.scalar(query)
    if holder is None:
        return None
    alive = sa.select(executions.c.id).where(
        executions.c.id == holder, executions.c.status.in_(_UNENDED)
    )
    return holder if conn.scalar(alive) is not None else None


def _live_holder() -> Any:
    holder = executions.alias("holder")
    joined = named.join(holder, holder.c.id == named.c.holder)
    return sa.select(named.c.holder).select_from(joined).where(holder.c.status.in_(_UNENDED))


def _wake_lock_waiters() -> Any:
    # Waiting for a lock (no wake-up time: one with a timeout tries again at its deadline)
    # that is free now: nobody unended holds it, or the setting is gone (acquire creates it).
    c = executions.c
    held = (
        _live_holder()
        .where(named.c.kind == "setting")
        .where(named.c.name == sa.func.substr(c.waits_on, len(LOCK_PREFIX) + 1))
    )
    waiting = executions.update().where(WAITING, c.wake_at.is_(None))
    waiting = waiting.where(c.waits_on.like(LOCK_PREFIX + "%"), ~held.exists())
    return waiting.values(wake_at=sa.bindparam("now", type_=c.wake_at.type))


# Built once: building them costs more than running them (the reaper runs every second).
_LIVE_HOLDER = _live_holder()
_WAKE_LOCK_WAITERS = _wake_lock_waiters()

"""Lease statements of the SQL store: who answers for an execution, and until when."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from flowrt.status import Status
from flowrt.storage import scripts
from flowrt.storage.base import ExecutionRecord
from flowrt.storage.rows import is_uuid
from flowrt.storage.schema import HELD, RUNNING, WAITING, executions


class LeaseStatements:
    """The `Store` lease methods on a SQLAlchemy engine; `SqlStore` inherits them."""

    engine: sa.Engine

    def claim(
        self,
        execution_id: str,
        version: int,
        worker: str,
        now: datetime,
        lease_until: datetime,
        head_id: str | None = None,
    ) -> ExecutionRecord | None:
        c = executions.c
        statement = (
            executions.update()
            .where(c.id == execution_id, c.version == version)
            .where(c.head_id == head_id if head_id is not None else sa.true())
            .where(c.status.in_((Status.RUNNING.value, Status.WAITING.value)))
            .where(sa.or_(c.worker.is_(None), c.worker == worker, _lease_over(now)))
            .values(worker=worker, lease_until=lease_until)
            .returning(*executions.c)
        )
        with self.engine.begin() as conn:
            row = conn.execute(statement).first()
            return scripts.record(conn, row) if row is not None else None

    def confirm(
        self, execution_id: str, version: int, worker: str, now: datetime, lease_until: datetime
    ) -> bool:
        if self.engine.dialect.name == "postgresql":
            # Plain SQL on an autocommit connection: one round trip, no statement building,
            # as on a step's hot path (the same test as `claim`).
            params = {
                "id": execution_id,
                "version": version,
                "worker": worker,
                "now": now,
                "lease_until": lease_until,
            }
            autocommit = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            with autocommit as conn:
                return conn.exec_driver_sql(_CONFIRM_SQL, params).first() is not None
        c = executions.c
        statement = (
            executions.update()
            .where(c.id == execution_id, c.version == version)
            .where(c.status.in_((Status.RUNNING.value, Status.WAITING.value)))
            .where(sa.or_(c.worker.is_(None), c.worker == worker, _lease_over(now)))
            .values(worker=worker, lease_until=lease_until)
        )
        with self.engine.begin() as conn:
            return conn.execute(statement).rowcount == 1

    def renew_leases(
        self, worker: str, execution_ids: Iterable[str], lease_until: datetime
    ) -> set[str]:
        wanted = [i for i in execution_ids if is_uuid(i)]
        if not wanted:
            return set()
        statement = (
            executions.update()
            .where(HELD, executions.c.worker == worker, executions.c.id.in_(wanted))
            .values(lease_until=lease_until)
            .returning(executions.c.id)
        )
        with self.engine.begin() as conn:
            return set(conn.scalars(statement))

    def unload(self, execution_id: str, version: int, worker: str) -> bool:
        c = executions.c
        statement = (
            executions.update()
            .where(c.id == execution_id, c.version == version, c.worker == worker)
            .values(worker=None, lease_until=None)
        )
        with self.engine.begin() as conn:
            return conn.execute(statement).rowcount == 1

    def release_worker(self, worker: str, now: datetime) -> int:
        c = executions.c
        # Handed over, not crashed: no holder (so the reaper counts no crash) and no lease
        # (so it sends the running ones on at its next pass, whatever the queue's length).
        statement = executions.update().where(HELD, c.worker == worker)
        with self.engine.begin() as conn:
            return conn.execute(statement.values(worker=None, lease_until=None)).rowcount

    def wake(
        self, execution_id: str, now: datetime, lease_until: datetime
    ) -> ExecutionRecord | None:
        c = executions.c
        statement = (
            executions.update()
            .where(c.id == execution_id, c.status == Status.WAITING.value, c.wake_at.is_(None))
            .values(wake_at=now, lease_until=lease_until)
            .returning(*executions.c)
        )
        with self.engine.begin() as conn:
            row = conn.execute(statement).first()
            return scripts.record(conn, row) if row is not None else None

    def wake_parents(self, now: datetime) -> int:
        with self.engine.begin() as conn:
            return conn.execute(_WAKE_PARENTS, {"now": now}).rowcount

    def overdue(self, now: datetime, limit: int) -> list[ExecutionRecord]:
        with self.engine.begin() as conn:
            rows = conn.execute(_OVERDUE, {"now": now, "limit": limit})
            return scripts.records(conn, rows)

    def take_over(
        self, execution_ids: Iterable[str], now: datetime, lease_until: datetime
    ) -> list[ExecutionRecord]:
        wanted = list(execution_ids)
        if not wanted:
            return []
        c = executions.c
        crashed = c.worker.is_not(None)  # a holder that stopped answering: it died (or froze)
        statement = (
            executions.update()
            .where(c.id.in_(wanted), _due(now), _lease_over(now))
            .values(
                version=c.version + 1,
                worker=None,
                lease_until=lease_until,
                crashes=sa.case((crashed, c.crashes + 1), else_=c.crashes),
                suspect_on=sa.case((sa.and_(crashed, c.suspect_on == c.worker), c.suspect_on)),
            )
            .returning(*executions.c)
        )
        with self.engine.begin() as conn:
            return scripts.records(conn, conn.execute(statement))

    def mark_suspect(self, execution_id: str, version: int, worker: str) -> bool:
        c = executions.c
        statement = (
            executions.update()
            .where(c.id == execution_id, c.version == version, c.worker == worker)
            .values(suspect_on=worker)
        )
        with self.engine.begin() as conn:
            return conn.execute(statement).rowcount == 1


def _overdue() -> Any:
    # One arm per range of a partial index: an OR of them would read every sleeping row.
    c, select = executions.c, sa.select(executions)
    now = sa.bindparam("now", type_=c.wake_at.type)
    due = sa.union_all(
        select.where(RUNNING, c.lease_until.is_(None)),
        select.where(RUNNING, c.lease_until < now),
        select.where(WAITING, c.wake_at <= now).where(_lease_over(now)),
    ).subquery("due")
    order = (due.c.lease_until.is_not(None), due.c.lease_until)
    return sa.select(due).order_by(*order).limit(sa.bindparam("limit", type_=sa.Integer))


def _wake_parents() -> Any:
    child, c = executions.alias("child"), executions.c
    ended_child = (
        sa.select(child.c.id)
        .where(child.c.parent_id == c.id, child.c.ended_at >= c.updated_at)
        .exists()
    )
    waiting = executions.update().where(WAITING, c.wake_at.is_(None), ended_child)
    return waiting.values(wake_at=sa.bindparam("now", type_=c.wake_at.type))


_CONFIRM_SQL = (
    "UPDATE executions SET worker = %(worker)s, lease_until = %(lease_until)s "
    "WHERE id = %(id)s AND version = %(version)s "
    f"AND status IN ('{Status.RUNNING.value}', '{Status.WAITING.value}') "
    "AND (worker IS NULL OR worker = %(worker)s "
    "OR lease_until IS NULL OR lease_until < %(now)s) RETURNING id"
)


def _lease_over(now: Any) -> Any:
    lease = executions.c.lease_until
    return sa.or_(lease.is_(None), lease < now)


def _due(now: datetime) -> Any:
    c = executions.c
    waking = sa.and_(c.status == Status.WAITING.value, c.wake_at <= now)
    return sa.or_(c.status == Status.RUNNING.value, waking)


# Built once: building them costs more than running them (a pass every second).
_OVERDUE = _overdue()
_WAKE_PARENTS = _wake_parents()

"""The SQL store: SQLAlchemy 2 Core over SQLite (embedded default) or PostgreSQL (production)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from flowrt.clock import utc_now
from flowrt.errors import (
    ExecutionChangedError,
    ExecutionNotFoundError,
    ForeignSavepointError,
    InvalidStateError,
    SavepointNotFoundError,
)
from flowrt.ids import new_id
from flowrt.status import Status
from flowrt.storage import migrate as migrations
from flowrt.storage import scripts
from flowrt.storage.base import (
    ExecutionRecord,
    LogRecord,
    SavepointRecord,
    StepCommit,
    Store,
)
from flowrt.storage.leases import LeaseStatements
from flowrt.storage.locks import LockStatements
from flowrt.storage.messages import MessageStatements
from flowrt.storage.named import NamedStatements
from flowrt.storage.removal import RemovalStatements
from flowrt.storage.rows import (
    is_uuid,
    savepoint_record,
    savepoint_row,
)
from flowrt.storage.schema import executions, logs, savepoints
from flowrt.storage.sources import SourceStatements
from flowrt.storage.step_sql import OneStatementCommits


def open_store(url: str, *, migrate: bool | None = None, pre_ping: bool = True) -> SqlStore:
    """Connect to `url`; SQLite migrates by itself, other databases must be upgraded already.

    `pre_ping=False` saves a round trip per transaction for callers that retry on a dropped
    connection themselves (workers do).
    """
    engine = create_engine(url, pre_ping=pre_ping)
    if migrate if migrate is not None else engine.dialect.name == "sqlite":
        migrations.upgrade(engine)
    else:
        migrations.check(engine)
    return SqlStore(engine)


def create_engine(url: str, pre_ping: bool = True) -> sa.Engine:
    """An engine for `url`, tuned for flowrt (SQLite: WAL and immediate write locks).

    Its errors never show statement parameters: they hold flow variables and outputs.
    """
    if url.startswith(("postgres://", "postgresql://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(
            url, pool_size=10, max_overflow=20, pool_pre_ping=pre_ping, hide_parameters=True
        )
    if parsed.database and parsed.database != ":memory:":
        _create_private(Path(parsed.database).expanduser())
    engine = sa.create_engine(
        url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the begin hook below open transactions
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")
        dbapi_connection.execute("PRAGMA busy_timeout=30000")

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # Take the write lock up front: a deferred transaction that later writes can fail
        # with "database is locked" instead of waiting for the other writer.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _create_private(path: Path) -> None:
    # The embedded database holds flows' variables and connector credentials: readable by its
    # owner only. SQLite gives its -wal and -shm files the mode of the database file.
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


class SqlStore(
    LeaseStatements,
    NamedStatements,
    RemovalStatements,
    SourceStatements,
    MessageStatements,
    LockStatements,
    Store,
):
    """`Store` on a SQLAlchemy engine; each public method runs in one transaction."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._insert = (postgresql if engine.dialect.name == "postgresql" else sqlite).insert
        # PostgreSQL runs a step's commit as one statement: one round trip, atomic by itself.
        self._one_statement = (
            OneStatementCommits(engine) if engine.dialect.name == "postgresql" else None
        )

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    # --- executions -------------------------------------------------------------------------

    def create_execution(
        self,
        flow_name: str,
        source: str,
        inputs: dict[str, Any],
        *,
        execution_id: str | None = None,
        parent_id: str | None = None,
        lease_until: datetime | None = None,
        signature: bytes | None = None,
        name: str | None = None,
        status: Status = Status.RUNNING,
    ) -> ExecutionRecord:
        now, execution_id = utc_now(), execution_id or new_id()
        row = {
            "id": execution_id,
            "flow_name": flow_name,
            "name": name,
            "source": None,
            "status": status.value,
            "version": 0,
            "head_id": None,
            "inputs": inputs,
            "outputs": {},
            "created_at": now,
            "updated_at": now,
            "parent_id": parent_id,
            "lease_until": lease_until,
            "signature": signature,
        }
        with self.engine.begin() as conn:
            # The text once, in `scripts`; the row names it by hash.
            row["script"] = scripts.store_source(conn, self._insert, source)
            conn.execute(self._insert(executions).values(row).on_conflict_do_nothing())
            return self._get_execution(conn, execution_id)

    def get_execution(self, execution_id: str) -> ExecutionRecord:
        with self.engine.begin() as conn:
            return self._get_execution(conn, execution_id)

    def list_children(self, parent_id: str) -> list[ExecutionRecord]:
        if not is_uuid(parent_id):
            return []
        query = (
            sa.select(executions)
            .where(executions.c.parent_id == parent_id)
            .order_by(executions.c.created_at, executions.c.id)
        )
        with self.engine.begin() as conn:
            return scripts.records(conn, conn.execute(query))

    def get_executions(self, execution_ids: Iterable[str]) -> list[ExecutionRecord]:
        wanted = [i for i in execution_ids if is_uuid(i)]
        if not wanted:
            return []
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(executions).where(executions.c.id.in_(wanted)))
            return scripts.records(conn, rows)

    def list_executions(
        self, limit: int = 50, status: Status | None = None, *, flow_name: str | None = None
    ) -> list[ExecutionRecord]:
        query = sa.select(executions).order_by(executions.c.created_at.desc()).limit(limit)
        if status is Status.UNKNOWN:
            known = [s.value for s in Status if s is not Status.UNKNOWN]
            query = query.where(executions.c.status.not_in(known))
        elif status is not None:
            query = query.where(executions.c.status == Status(status).value)
        if flow_name is not None:
            query = query.where(executions.c.flow_name == flow_name)
        with self.engine.begin() as conn:
            return scripts.records(conn, conn.execute(query))

    def commit_step(self, commit: StepCommit) -> bool:
        values = dict(commit.changes, version=commit.version + 1, updated_at=utc_now())
        if commit.savepoint is not None:
            values["head_id"] = commit.savepoint.id
        if commit.savepoint is not None or "status" in commit.changes:
            values.update(crashes=0, suspect_on=None)  # progress: no longer a suspect
        if self._one_statement and not commit.logs and commit.restored is None:
            return self._one_statement.commit(commit, values)
        with self.engine.begin() as conn:
            moved = conn.execute(
                executions.update()
                .where(executions.c.id == commit.execution_id)
                .where(executions.c.version == commit.version)
                .values(values)
            )
            if moved.rowcount != 1:
                return False
            if commit.savepoint is not None:
                conn.execute(savepoints.insert().values(savepoint_row(commit.savepoint)))
            if commit.logs:
                conn.execute(logs.insert(), [vars(log) for log in commit.logs])
            if commit.restored is not None:
                self._count_restore(conn, commit.restored)
        return True

    def restore(
        self,
        execution_id: str,
        savepoint_id: str,
        allowed: Iterable[Status],
        lease_until: datetime | None = None,
        *,
        version: int | None = None,
        changes: dict[str, Any] | None = None,
    ) -> ExecutionRecord:
        with self.engine.begin() as conn:
            current = self._locked(conn, execution_id, allowed, "restore")
            if version is not None and current.version != version:
                raise ExecutionChangedError(execution_id, version, current.version)
            target = self._get_savepoint(conn, savepoint_id)
            if target is None:
                raise SavepointNotFoundError(execution_id, savepoint_id, "id")
            if target.execution_id != execution_id:
                raise ForeignSavepointError(execution_id, savepoint_id, target.execution_id)
            # A paused execution stays paused, at the restored savepoint, until it is resumed.
            paused = current.status is Status.PAUSED
            conn.execute(
                executions.update()
                .where(executions.c.id == execution_id)
                .values(
                    head_id=target.id,
                    status=(Status.PAUSED if paused else Status.RUNNING).value,
                    version=current.version + 1,
                    wake_at=None,
                    error=None,
                    error_line=None,
                    ended_at=None,
                    updated_at=utc_now(),
                    worker=None,
                    lease_until=None if paused else lease_until,
                    **scripts.source_changes(conn, self._insert, changes or {}),
                )
            )
            self._count_restore(conn, target.id)
            return self._get_execution(conn, execution_id)

    def set_status(
        self,
        execution_id: str,
        status: Status,
        allowed: Iterable[Status],
        lease_until: datetime | None = None,
    ) -> ExecutionRecord:
        action = "pause" if status is Status.PAUSED else "resume"
        with self.engine.begin() as conn:
            current = self._locked(conn, execution_id, allowed, action)
            conn.execute(
                executions.update()
                .where(executions.c.id == execution_id)
                .values(
                    status=status.value,
                    version=current.version + 1,
                    worker=None,
                    lease_until=lease_until,
                    updated_at=utc_now(),
                )
            )
            return self._get_execution(conn, execution_id)

    def cancel(self, execution_id: str, now: datetime) -> list[ExecutionRecord]:
        with self.engine.begin() as conn:
            root = self._get_execution(conn, execution_id, lock=True)
            if root.status.ended:
                raise InvalidStateError(
                    execution_id, root.status.value, "cancel", "RUNNING, WAITING, PAUSED"
                )
            family, frontier = [execution_id], [execution_id]
            while frontier:
                query = sa.select(executions.c.id).where(executions.c.parent_id.in_(frontier))
                frontier = list(conn.scalars(query))
                family.extend(frontier)
            rows = conn.execute(
                executions.update()
                .where(executions.c.id.in_(family))
                .where(executions.c.status.in_(_UNENDED))
                .values(
                    status=Status.ENDED_CANCELLED.value,
                    version=executions.c.version + 1,
                    message="cancelled",
                    ended_at=now,
                    updated_at=now,
                    worker=None,
                    wake_at=None,
                    lease_until=None,
                )
                .returning(*executions.c)
            )
            return scripts.records(conn, rows)

    def archive(self, execution_id: str) -> ExecutionRecord:
        with self.engine.begin() as conn:
            current = self._get_execution(conn, execution_id, lock=True)
            if not current.status.ended:
                raise InvalidStateError(execution_id, current.status.value, "archive", "ENDED_*")
            conn.execute(savepoints.delete().where(savepoints.c.execution_id == execution_id))
            now = utc_now()
            conn.execute(
                executions.update()
                .where(executions.c.id == execution_id)
                .values(
                    head_id=None,
                    archived_at=now,
                    updated_at=now,
                    version=current.version + 1,
                )
            )
            return self._get_execution(conn, execution_id)

    # --- savepoints -------------------------------------------------------------------------

    def get_savepoint(self, savepoint_id: str) -> SavepointRecord | None:
        with self.engine.begin() as conn:
            return self._get_savepoint(conn, savepoint_id)

    def get_timeline(self, head_id: str, *, variables: bool = True) -> list[SavepointRecord]:
        # The execution's own rows only: without it the planner may scan every savepoint.
        owner = sa.select(savepoints.c.execution_id).where(savepoints.c.id == head_id)
        columns: list[Any] = list(savepoints.c)
        if not variables:  # a display snapshot, unsigned: reading and decoding it is waste
            columns = [c for c in columns if c.name != "variables"]
            columns.append(sa.null().label("variables"))
        query = sa.select(*columns).join(*self._chain(head_id))
        query = query.where(savepoints.c.execution_id == owner.scalar_subquery())
        with self.engine.begin() as conn:
            rows = conn.execute(query)
            return sorted((savepoint_record(row) for row in rows), key=lambda s: s.seq)

    def find_named(self, head_id: str, name: str) -> SavepointRecord | None:
        query = (
            sa.select(savepoints)
            .join(*self._chain(head_id))
            .where(savepoints.c.name == name)
            .order_by(savepoints.c.seq.desc())
            .limit(1)
        )
        with self.engine.begin() as conn:
            row = conn.execute(query).first()
        return savepoint_record(row) if row is not None else None

    def count_returns(self, savepoint: SavepointRecord) -> int:
        s = savepoints.c
        mine = s.execution_id == savepoint.execution_id
        further = sa.select(sa.func.max(s.created_at)).where(mine, s.seq > savepoint.seq)
        since = further.scalar_subquery()
        query = sa.select(sa.func.count()).where(
            mine,
            s.seq == savepoint.seq,
            s.call == savepoint.call,
            s.line == savepoint.line,
            sa.or_(since.is_(None), s.created_at > since),
        )
        with self.engine.begin() as conn:
            return int(conn.scalar(query) or 0)

    def list_savepoints(self, execution_id: str) -> list[SavepointRecord]:
        if not is_uuid(execution_id):
            return []
        query = (
            sa.select(savepoints)
            .where(savepoints.c.execution_id == execution_id)
            .order_by(savepoints.c.created_at, savepoints.c.seq)
        )
        with self.engine.begin() as conn:
            return [savepoint_record(row) for row in conn.execute(query)]

    def list_logs(self, execution_id: str) -> list[LogRecord]:
        if not is_uuid(execution_id):
            return []
        query = sa.select(logs).where(logs.c.execution_id == execution_id).order_by(logs.c.id)
        with self.engine.begin() as conn:
            return [
                LogRecord(r.execution_id, r.seq, r.line, r.created_at, r.message)
                for r in conn.execute(query)
            ]

    # --- private helpers: run inside the caller's transaction --------------------------------

    def _locked(
        self, conn: sa.Connection, execution_id: str, allowed: Iterable[Status], action: str
    ) -> ExecutionRecord:
        current = self._get_execution(conn, execution_id, lock=True)
        allowed = set(allowed)
        if current.status not in allowed:
            wanted = ", ".join(sorted(s.value for s in allowed))
            raise InvalidStateError(execution_id, current.status.value, action, wanted)
        return current

    def _get_execution(
        self, conn: sa.Connection, execution_id: str, lock: bool = False
    ) -> ExecutionRecord:
        if not is_uuid(execution_id):
            raise ExecutionNotFoundError(execution_id)
        query = sa.select(executions).where(executions.c.id == execution_id)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise ExecutionNotFoundError(execution_id)
        return scripts.record(conn, row)

    def _get_savepoint(self, conn: sa.Connection, savepoint_id: str) -> SavepointRecord | None:
        if not is_uuid(savepoint_id):
            return None
        row = conn.execute(sa.select(savepoints).where(savepoints.c.id == savepoint_id)).first()
        return savepoint_record(row) if row is not None else None

    def _count_restore(self, conn: sa.Connection, savepoint_id: str) -> None:
        conn.execute(
            savepoints.update()
            .where(savepoints.c.id == savepoint_id)
            .values(restored=savepoints.c.restored + 1)
        )

    def _chain(self, head_id: str) -> tuple[Any, Any]:
        # Each parent comes before its child: requiring a lower seq at every step ends the
        # recursion even on rows altered into a cycle (the journal's check refuses those).
        sp = savepoints.c
        base = sa.select(sp.id, sp.parent_id, sp.seq).where(sp.id == head_id)
        chain = base.cte("chain", recursive=True)
        chain = chain.union_all(
            sa.select(sp.id, sp.parent_id, sp.seq).join(
                chain, sa.and_(sp.id == chain.c.parent_id, sp.seq < chain.c.seq)
            )
        )
        return chain, sp.id == chain.c.id


_UNENDED = (Status.RUNNING.value, Status.WAITING.value, Status.PAUSED.value)

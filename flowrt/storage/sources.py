"""Source statements of the SQL store: move an execution onto a new script at its head."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from flowrt.clock import utc_now
from flowrt.errors import ExecutionChangedError, ExecutionNotFoundError, InvalidStateError
from flowrt.status import Status
from flowrt.storage import scripts
from flowrt.storage.base import ExecutionRecord
from flowrt.storage.rows import is_uuid
from flowrt.storage.schema import executions


class SourceStatements:
    """The `Store.move_source` method on a SQLAlchemy engine; `SqlStore` inherits it."""

    engine: sa.Engine
    _insert: Any

    def move_source(
        self,
        execution_id: str,
        version: int,
        allowed: Iterable[Status],
        changes: dict[str, Any],
        lease_until: datetime | None = None,
    ) -> ExecutionRecord:
        if not is_uuid(execution_id):
            raise ExecutionNotFoundError(execution_id)
        query = sa.select(executions).where(executions.c.id == execution_id).with_for_update()
        with self.engine.begin() as conn:
            row = conn.execute(query).first()
            if row is None:
                raise ExecutionNotFoundError(execution_id)
            current, allowed = scripts.record(conn, row), set(allowed)
            if current.status not in allowed:
                wanted = ", ".join(sorted(s.value for s in allowed))
                raise InvalidStateError(execution_id, current.status.value, "upgrade", wanted)
            if current.version != version:
                raise ExecutionChangedError(execution_id, version, current.version)
            # Unloaded: a live copy on a worker is stale at the new version, and its step
            # messages too. A running execution is sent its step again (its lease holds for
            # it); a waiting one is woken by the reaper when due, or by what it waits for.
            running = current.status is Status.RUNNING
            moved = conn.execute(
                executions.update()
                .where(executions.c.id == execution_id)
                .values(
                    **scripts.source_changes(conn, self._insert, changes),
                    version=current.version + 1,
                    worker=None,
                    lease_until=lease_until if running else None,
                    updated_at=utc_now(),
                )
                .returning(*executions.c)
            )
            return scripts.record(conn, moved.one())

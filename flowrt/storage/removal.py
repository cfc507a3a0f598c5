"""Removal statements of the SQL store: deleting an ended execution and all that is its own."""

from __future__ import annotations

import sqlalchemy as sa

from flowrt.errors import InvalidStateError
from flowrt.status import Status
from flowrt.storage.messages import waits_on_message
from flowrt.storage.rows import is_uuid
from flowrt.storage.schema import executions, logs, messages, savepoints

_ENDED = tuple(status.value for status in Status if status.ended)


class RemovalStatements:
    """The `Store` method that deletes executions; `SqlStore` inherits it."""

    engine: sa.Engine

    def delete_execution(self, execution_id: str) -> list[str]:
        if not is_uuid(execution_id):
            return []
        c = executions.c
        with self.engine.begin() as conn:
            family: list[str] = []
            frontier = [str(i) for i in conn.scalars(sa.select(c.id).where(c.id == execution_id))]
            while frontier:  # each id once: rows altered into a cycle end the walk too
                family.extend(frontier)
                query = sa.select(c.id).where(c.parent_id.in_(frontier))
                frontier = [str(i) for i in conn.scalars(query) if str(i) not in family]
            if not family:
                return []
            query = sa.select(c.id, c.status).where(c.id.in_(family)).with_for_update()
            for row in conn.execute(query):
                if row.status not in _ENDED:
                    raise InvalidStateError(str(row.id), row.status, "delete", "ENDED_*")
            # A message of theirs that an execution outside waits for would leave it waiting.
            sent = messages.c.execution_id.in_(family)
            waited = [
                waits_on_message(m) for m in conn.scalars(sa.select(messages.c.id).where(sent))
            ]
            query = sa.select(c.id, c.status).where(c.waits_on.in_(waited), c.status.not_in(_ENDED))
            for row in conn.execute(query.limit(1)) if waited else ():
                raise InvalidStateError(
                    str(row.id),
                    row.status,
                    f"delete {execution_id} while its message is awaited by",
                    "ENDED_*",
                )
            for table in (logs, savepoints, messages):
                conn.execute(table.delete().where(table.c.execution_id.in_(family)))
            conn.execute(executions.delete().where(c.id.in_(family)))
        return family

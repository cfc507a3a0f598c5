"""Named-object statements of the SQL store: connectors, flows, settings and files."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from flowrt.clock import utc_now
from flowrt.storage.base import NamedRecord
from flowrt.storage.rows import named_record
from flowrt.storage.schema import named


class NamedStatements:
    """The `Store` methods of named objects on a SQLAlchemy engine; `SqlStore` inherits them."""

    engine: sa.Engine
    _insert: Any

    def put_named(self, kind: str, name: str, value: Any, signature: bytes | None = None) -> None:
        row = {"kind": kind, "name": name, "updated_at": utc_now(), "signature": signature}
        if isinstance(value, (bytes, bytearray)):
            row.update(value=None, content=bytes(value))
        else:
            row.update(value=value, content=None)
        statement = self._insert(named).values(row)
        replaced = ("value", "content", "updated_at", "signature")
        statement = statement.on_conflict_do_update(
            index_elements=["kind", "name"],
            set_={k: statement.excluded[k] for k in replaced},
        )
        with self.engine.begin() as conn:
            conn.execute(statement)

    def get_named(self, kind: str, name: str) -> NamedRecord | None:
        query = sa.select(named).where(named.c.kind == kind, named.c.name == name)
        with self.engine.begin() as conn:
            row = conn.execute(query).first()
        return named_record(row) if row is not None else None

    def list_named(self, kind: str, prefix: str | None = None) -> list[NamedRecord]:
        query = sa.select(named).where(named.c.kind == kind).order_by(named.c.name)
        if prefix is not None:
            query = query.where(named.c.name.startswith(prefix, autoescape=True))
        with self.engine.begin() as conn:
            return [named_record(row) for row in conn.execute(query)]

    def append_named(
        self, kind: str, name: str, item: Any, max_length: int | None = None
    ) -> str | None:
        now = utc_now()
        create = self._insert(named).values(
            kind=kind, name=name, value=None, content=None, updated_at=now
        )
        where = sa.and_(named.c.kind == kind, named.c.name == name)
        with self.engine.begin() as conn:
            # Created first, then read under its row lock (SQLite: under the write lock the
            # insert took), so that two appenders read and write the list one after the other.
            conn.execute(create.on_conflict_do_nothing())
            row = conn.execute(
                sa.select(named.c.value, named.c.content).where(where).with_for_update()
            ).one()
            held = bytes(row.content) if row.content is not None else row.value
            if held is not None and not isinstance(held, list):
                return type(held).__name__  # the row existed: the insert added nothing
            items = [*(held or []), item]
            if max_length is not None:
                items = items[-max_length:]
            conn.execute(
                named.update().where(where).values(value=items, updated_at=now, signature=None)
            )
        return None

    def delete_named(self, kind: str, name: str) -> bool:
        with self.engine.begin() as conn:
            gone = conn.execute(named.delete().where(named.c.kind == kind, named.c.name == name))
        return gone.rowcount > 0

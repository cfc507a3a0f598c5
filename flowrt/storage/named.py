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

    def delete_named(self, kind: str, name: str) -> bool:
        with self.engine.begin() as conn:
            gone = conn.execute(named.delete().where(named.c.kind == kind, named.c.name == name))
        return gone.rowcount > 0

"""A step's commit on PostgreSQL: one statement, sent straight to the driver in autocommit.

`WITH moved AS (UPDATE ... WHERE version = :v RETURNING id) INSERT ... SELECT FROM moved`:
the savepoint is inserted only if the fenced update matched, in one round trip, atomic by
itself. The statement is plain SQL built once per set of changed columns (SQLAlchemy's
statement building cost as much as the commit), and it goes straight to the driver on a
connection of the store's pool, switched to autocommit (psycopg's switch costs no round
trip) and back: no transaction to begin, no SQLAlchemy `Connection` to build. That is about
half of what the same statement costs through a `Connection`.

Driver errors come out as SQLAlchemy's (`sqlalchemy.exc.OperationalError` and its kin),
with the parameters hidden, as every other statement's do: the step's retry of transient
faults sees no difference. When the error shows the connection broken, the whole pool is
marked stale as SQLAlchemy does (after a server restart every idle connection is dead), so
one commit fails, not one per idle connection.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from flowrt.storage.base import StepCommit
from flowrt.storage.rows import savepoint_row
from flowrt.storage.schema import executions, savepoints

_JSON_COLUMNS = frozenset({"inputs", "outputs"})


class OneStatementCommits:
    """Step commits of one store, on PostgreSQL."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._statements: dict[tuple[tuple[str, ...], bool], str] = {}

    def commit(self, commit: StepCommit, values: dict[str, Any]) -> bool:
        """Apply `values` to the execution if it is still at `commit.version`, and insert
        the savepoint of `commit` if it has one; False when the fence did not match."""
        columns = tuple(sorted(values))
        with_savepoint = commit.savepoint is not None
        sql = self._statements.get((columns, with_savepoint))
        if sql is None:
            sql = self._statements[(columns, with_savepoint)] = one_statement_sql(
                columns, with_savepoint
            )
        params = {f"e_{key}": pg_value(key, value) for key, value in values.items()}
        params.update(e_id=commit.execution_id, e_fence=commit.version)
        if commit.savepoint is not None:
            row = savepoint_row(commit.savepoint)
            params.update({f"s_{key}": value for key, value in row.items()})
            params["s_variables"] = json.dumps(row["variables"])
        return self._run(sql, params)

    def _run(self, sql: str, params: dict[str, Any]) -> bool:
        engine = self._engine
        dialect = engine.dialect
        dbapi_error = dialect.loaded_dbapi.Error
        fairy: Any = None
        try:
            fairy = engine.raw_connection()
            raw = fairy.dbapi_connection
            raw.autocommit = True  # the driver's own switch: no round trip
            try:
                with raw.cursor() as cursor:
                    cursor.execute(sql, params)
                    return cursor.fetchone() is not None
            finally:
                if not raw.broken:  # as the pool's other users expect it
                    raw.autocommit = False
        except dbapi_error as error:
            broken = fairy is None or dialect.is_disconnect(error, fairy.dbapi_connection, None)
            if fairy is not None and broken:
                # As SQLAlchemy's own `Connection` does: every connection of the pool opened
                # before this one is stale too (a server restart), and is replaced on checkout.
                engine.pool._invalidate(fairy, error)
                fairy = None
            elif fairy is not None and fairy.dbapi_connection.autocommit:
                # Not switched back: the pool's other users would lose their transactions.
                fairy.invalidate(error)
                fairy = None
            raise sa.exc.DBAPIError.instance(
                sql,
                params,
                error,
                dbapi_error,
                hide_parameters=True,
                connection_invalidated=broken,
                dialect=dialect,
            ) from error
        except BaseException as error:
            # Interrupted mid-statement: the connection's state is unknown; never reuse it.
            if fairy is not None:
                fairy.invalidate(error)
                fairy = None
            raise
        finally:
            if fairy is not None:
                fairy.close()


def pg_value(column: str, value: Any) -> Any:
    """`value` as the driver takes it for `column` of executions (JSON columns as text)."""
    return json.dumps(value) if column in _JSON_COLUMNS else value


def one_statement_sql(columns: tuple[str, ...], with_savepoint: bool) -> str:
    """The step commit's SQL for these changed `columns` of executions."""
    known = set(executions.c.keys())
    if not set(columns) <= known:
        raise ValueError(f"not columns of executions: {sorted(set(columns) - known)}")
    cast = {name: "::json" for name in _JSON_COLUMNS}
    assignments = ", ".join(f"{c} = %(e_{c})s{cast.get(c, '')}" for c in columns)
    update = (
        f"UPDATE executions SET {assignments} "
        "WHERE id = %(e_id)s AND version = %(e_fence)s RETURNING id"
    )
    if not with_savepoint:
        return update
    names = savepoints.c.keys()
    selected = ", ".join(f"%(s_{c})s{'::json' if c == 'variables' else ''}" for c in names)
    return (
        f"WITH moved AS ({update}) "
        f"INSERT INTO savepoints ({', '.join(names)}) SELECT {selected} FROM moved RETURNING id"
    )

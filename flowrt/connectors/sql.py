"""The SQL connector: any database SQLAlchemy reaches by URL."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from flowrt.connectors.base import Connector
from flowrt.errors import ConnectorError, InvalidCallError


class SqlConnector(Connector):
    """`connect(name, fetch=SQL)` returns `{'result': rows}` (a list of dicts), `fetchrow=SQL`
    `{'result': the first row}` (a dict, or None), `fetchval=SQL` `{'result': the first
    column of the first row}` (or None), and `execute=SQL` `{'result': None, 'rowcount': n}`.

    `params=` binds named parameters (`:name` in the SQL, given as a dict) or, given as a
    list, positional ones (`$1`, `$2`, ... in the SQL, as Cloudomation's SQL types take them).
    """

    type_name = "sql"
    required = ("url",)
    call_params = ("fetch", "fetchrow", "fetchval", "execute", "params")

    @classmethod
    def check(cls, config: dict[str, Any]) -> str | None:
        """A URL SQLAlchemy parses, naming a backend (dialect) it knows."""
        url = config["url"]
        if not isinstance(url, str):
            return f"its url must be a str, not {type(url).__name__}"
        try:
            parsed = sa.engine.make_url(url)
        except sa.exc.ArgumentError:
            return f"its url {url!r} is not a SQLAlchemy URL (dialect+driver://user@host/db)"
        try:
            parsed.get_dialect()
        except sa.exc.NoSuchModuleError:
            return (
                f"its url {url!r} names the backend {parsed.drivername!r}, which SQLAlchemy "
                "does not know; use, say, postgresql+psycopg:// or sqlite:///"
            )
        return None

    @classmethod
    def engine_url(cls, config: dict[str, Any]) -> str | sa.engine.URL:
        """The URL of the database `config` names."""
        return config["url"]  # type: ignore[no-any-return]

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        self._engine = sa.create_engine(self.engine_url(config), pool_pre_ping=True)

    def call(self, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        self.check_params(params)
        given = [mode for mode in _MODES if params.get(mode) is not None]
        if len(given) != 1:
            raise InvalidCallError(
                f"connect({self.name!r}) needs exactly one of fetch=, fetchrow=, fetchval= "
                "('SELECT ...') or execute= ('INSERT/UPDATE ...')"
            )
        mode = given[0]
        sql, binds = _bound(str(params[mode]), params.get("params"))
        try:
            with self._engine.begin() as conn:
                result = conn.execute(sa.text(sql), binds)
                if mode == "execute":
                    return {"result": None, "rowcount": result.rowcount}
                rows = [dict(row._mapping) for row in result]
        except sa.exc.SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc
            raise ConnectorError(
                self.masked(f"connector {self.name!r}: {type(cause).__name__}: {cause}")
            ) from None
        if mode == "fetch":
            return {"result": rows}
        first = rows[0] if rows else None
        if mode == "fetchrow":
            return {"result": first}
        return {"result": next(iter(first.values()), None) if first else None}

    def close(self) -> None:
        self._engine.dispose()


_MODES = ("fetch", "fetchrow", "fetchval", "execute")
_POSITIONAL = re.compile(r"\$(\d+)")


def _bound(sql: str, params: object) -> tuple[str, dict[str, Any]]:
    """The SQL and its named binds: a list of parameters binds `$1`, `$2`, ... in order."""
    if params is None:
        return sql, {}
    if isinstance(params, dict):
        return sql, params
    if isinstance(params, (list, tuple)):
        binds = {f"p{n}": value for n, value in enumerate(params, start=1)}
        used = {int(n) for n in _POSITIONAL.findall(sql)}
        if not used <= set(range(1, len(binds) + 1)):
            raise InvalidCallError(
                f"the SQL uses ${max(used)} but params= gives {len(binds)} value(s)"
            )
        return _POSITIONAL.sub(r"(:p\1)", sql), binds  # "(:p1)::int" still casts
    raise InvalidCallError(
        f"params= is a dict (for :name in the SQL) or a list (for $1, $2, ...), "
        f"not {type(params).__name__}"
    )

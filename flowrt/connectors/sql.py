"""The SQL connector: any database SQLAlchemy reaches by URL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from flowrt.connectors.base import Connector
from flowrt.errors import ConnectorError, InvalidCallError


class SqlConnector(Connector):
    """`connect(name, fetch=SQL)` returns `{'result': rows}`; `execute=SQL` returns a rowcount.

    `params=` binds named parameters (`:name` in the SQL).
    """

    type_name = "sql"
    required = ("url",)
    call_params = ("fetch", "execute", "params")

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

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        self._engine = sa.create_engine(config["url"], pool_pre_ping=True)

    def call(self, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        self.check_params(params)
        fetch, execute = params.get("fetch"), params.get("execute")
        if (fetch is None) == (execute is None):
            raise InvalidCallError(
                f"connect({self.name!r}) needs exactly one of fetch='SELECT ...' or "
                "execute='INSERT/UPDATE ...'"
            )
        binds = params.get("params") or {}
        try:
            with self._engine.begin() as conn:
                result = conn.execute(sa.text(str(fetch or execute)), binds)
                if fetch is not None:
                    return {"result": [dict(row._mapping) for row in result]}
                return {"result": None, "rowcount": result.rowcount}
        except sa.exc.SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc
            raise ConnectorError(
                self.masked(f"connector {self.name!r}: {type(cause).__name__}: {cause}")
            ) from None

    def close(self) -> None:
        self._engine.dispose()

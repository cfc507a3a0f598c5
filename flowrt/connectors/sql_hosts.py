"""Cloudomation's SQL connection types by host: SQLPG (PostgreSQL) and SQLMY (MySQL/MariaDB).

They are the sql connector with its URL built from `host`, `port`, `database`, `user` (or
`username`) and `password`; `SQLPS` and `SQLMYSQL` are the names some library scripts use.
"""

from __future__ import annotations

import importlib.util
from typing import Any, ClassVar

import sqlalchemy as sa

from flowrt.connectors.sql import SqlConnector

_TEXT_FIELDS = ("host", "database", "user", "username", "password")


class HostSqlConnector(SqlConnector):
    """A SQL database reached by host and credentials instead of a URL."""

    type_name = "sqlhost"
    required = ("host",)
    optional = ("port", "database", "user", "username", "password")
    dialect: ClassVar[str] = ""  # SQLAlchemy's dialect+driver
    driver: ClassVar[str] = ""  # the module that dialect imports
    driver_package: ClassVar[str] = ""  # what `pip install` installs it as
    default_port: ClassVar[int] = 0

    @classmethod
    def check(cls, config: dict[str, Any]) -> str | None:
        """Text fields that are text, a port from 1 to 65535, one user name, a driver."""
        for field in _TEXT_FIELDS:
            value = config.get(field)
            if value is not None and not isinstance(value, str):
                return f"its {field} must be a str, not {type(value).__name__}"
        if config.get("user") and config.get("username"):
            return "give its user name once: user= or username=, not both"
        port = config.get("port")
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535
        ):
            return f"its port must be a whole number from 1 to 65535, not {port!r}"
        if importlib.util.find_spec(cls.driver) is None:
            return (
                f"the {cls.type_name.upper()} connection type needs the Python driver "
                f"{cls.driver!r}, which is not installed: pip install {cls.driver_package}"
            )
        return None

    @classmethod
    def engine_url(cls, config: dict[str, Any]) -> sa.engine.URL:
        """The URL of `config`'s database; the password is quoted by SQLAlchemy's URL."""
        return sa.engine.URL.create(
            cls.dialect,
            username=config.get("user") or config.get("username") or None,
            password=config.get("password") or None,
            host=config["host"],
            port=config.get("port") or cls.default_port,
            database=config.get("database") or None,
        )


class PostgresConnector(HostSqlConnector):
    """`this.task('SQLPG', host=..., database=..., user=..., password=..., fetchval=SQL)`."""

    type_name = "sqlpg"
    dialect = "postgresql+psycopg"
    driver = "psycopg"
    driver_package = "'psycopg[binary]'"
    default_port = 5432


class PostgresAliasConnector(PostgresConnector):
    """SQLPS: what some library scripts call SQLPG."""

    type_name = "sqlps"


class MysqlConnector(HostSqlConnector):
    """`this.task('SQLMY', host=..., ...)`: MySQL or MariaDB, through PyMySQL."""

    type_name = "sqlmy"
    dialect = "mysql+pymysql"
    driver = "pymysql"
    driver_package = "pymysql"
    default_port = 3306


class MysqlAliasConnector(MysqlConnector):
    """SQLMYSQL: another name of SQLMY."""

    type_name = "sqlmysql"

"""Schema migrations with Alembic: upgrade to the newest revision, or check a database is there."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from flowrt.errors import SchemaError

_HERE = Path(__file__).resolve().parent


def _config() -> Config:
    config = Config(str(_HERE / "alembic.ini"))
    config.set_main_option("script_location", str(_HERE / "migrations"))
    return config


def head_revision() -> str:
    """The newest revision this flowrt ships."""
    return ScriptDirectory.from_config(_config()).get_current_head() or ""


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at, or None if it has no flowrt schema."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the database to `revision` (the newest); safe to run again."""
    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def downgrade(engine: sa.Engine, revision: str) -> None:
    """Take the database back to `revision` (tests of migrations; an operator undoing one)."""
    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def check(engine: sa.Engine) -> None:
    """Raise `SchemaError` unless the database is at the newest revision."""
    found, wanted = current_revision(engine), head_revision()
    if found != wanted:
        raise SchemaError(engine.url.render_as_string(hide_password=True), found, wanted)

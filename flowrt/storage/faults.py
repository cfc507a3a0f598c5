"""Database faults: whether an error may pass if the write is tried again, and what it says.

A transient fault (the connection dropped, the server restarts or is short of resources, a
serialization failure or deadlock, SQLite busy) may pass on a later attempt; a permanent one
(data, integrity, syntax, access: what was asked is refused) fails the same way every time
and must never be retried. PostgreSQL errors are told apart by their SQLSTATE class, SQLite
ones by their result code. Anything not known to be transient is permanent: retrying a
deterministic error forever is worse than ending one execution.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import exc

T = TypeVar("T")

# SQLSTATE classes and codes of PostgreSQL errors that may pass on a later attempt.
_TRANSIENT_CLASSES = (
    "08",  # connection exception
    "53",  # insufficient resources (out of memory, disk full, too many connections)
)
_TRANSIENT_CODES = frozenset(
    {
        "40001",  # serialization failure
        "40P01",  # deadlock detected
        "57P01",  # admin shutdown (the server stops, or the backend was terminated)
        "57P02",  # crash shutdown
        "57P03",  # cannot connect now (the server is starting)
    }
)
# SQLite result codes (their primary code, the low byte) of a database held by another writer.
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6


def is_transient(error: BaseException) -> bool:
    """True when `error` is a database fault that may pass if the same write is tried again."""
    if isinstance(error, exc.TimeoutError):  # no pooled connection came free in time
        return True
    if not isinstance(error, exc.DBAPIError):
        return False
    if error.connection_invalidated:  # the connection dropped under the statement
        return True
    orig = error.orig
    if isinstance(orig, sqlite3.Error):
        return _sqlite_busy(orig)
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate:
        code = str(sqlstate)
        return code in _TRANSIENT_CODES or code.startswith(_TRANSIENT_CLASSES)
    # No SQLSTATE: psycopg raises OperationalError without one when it loses the server.
    return isinstance(error, exc.OperationalError)


def is_permanent(error: BaseException) -> bool:
    """True when `error` is a database fault that would fail the same way if tried again."""
    return isinstance(error, exc.SQLAlchemyError) and not is_transient(error)


def describe(error: BaseException) -> str:
    """The error's class and the database's own message, without SQL, parameters or row data.

    SQLAlchemy's `str(error)` shows the statement's parameters (which hold flow variables)
    and PostgreSQL's DETAIL repeats the refused row: neither belongs in a log or a message.
    """
    orig = error.orig if isinstance(error, exc.DBAPIError) else None
    if orig is None:
        text = str(error).split("\n", 1)[0] if not isinstance(error, exc.StatementError) else ""
        return f"{type(error).__name__}: {text}".rstrip(": ")
    diagnostic = getattr(orig, "diag", None)
    text = getattr(diagnostic, "message_primary", None) or str(orig).split("\n", 1)[0]
    return f"{type(orig).__name__}: {text.strip()}".rstrip(": ")


@dataclass(frozen=True)
class Backoff:
    """Bounded exponential backoff: `attempts` tries, waiting `first_s` doubled up to `max_s`."""

    attempts: int
    first_s: float
    max_s: float

    def delay_s(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (0 for the first)."""
        return float(min(self.first_s * 2**retry, self.max_s))


def retry_transient(
    attempt: Callable[[], T],
    backoff: Backoff,
    sleep: Callable[[float], None],
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """Call `attempt` until it returns; retry only transient faults, at most `backoff.attempts`.

    A permanent fault, or the last transient one, is raised as it is.
    """
    for retry in range(max(backoff.attempts, 1)):
        try:
            return attempt()
        except Exception as error:
            if not is_transient(error) or retry + 1 >= backoff.attempts:
                raise
            delay_s = backoff.delay_s(retry)
            if on_retry is not None:
                on_retry(error, delay_s)
            sleep(delay_s)
    raise AssertionError("unreachable")  # pragma: no cover


def _sqlite_busy(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    message = str(error).lower()
    return isinstance(error, sqlite3.OperationalError) and (
        "locked" in message or "busy" in message
    )

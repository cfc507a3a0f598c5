"""Flow sources stored once, by SHA-256: write an execution's source, read records with theirs.

An `executions` row names its source by hash (`script`); the text is in `scripts`. Reading
rows into records fetches the texts of all of them in one query, and only those this process
has not read before: a hash names one text forever, so they are kept (up to `CACHE_SIZE`).
A text is kept only if it hashes to its key; one edited in the database is handed on as it
is, and the execution's signature, which binds the text, refuses it (see flowrt/seals.py).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from flowrt.clock import utc_now
from flowrt.storage.base import ExecutionRecord
from flowrt.storage.rows import execution_record
from flowrt.storage.schema import scripts

CACHE_SIZE = 1024  # texts kept per process (a flow's source is some KB: a few MB at most)

_cache: dict[str, str] = {}
_lock = threading.Lock()


def source_hash(source: str) -> str:
    """The key of `source` in `scripts`: its SHA-256 in hex."""
    return hashlib.sha256(source.encode(errors="surrogatepass")).hexdigest()


def store_source(conn: sa.Connection, insert: Any, source: str) -> str:
    """Store `source` once (kept if it is there) in the caller's transaction; its hash.

    Always sent, even when this process knows the text: the kept texts do not say which
    database holds them.
    """
    digest = source_hash(source)
    row = {"hash": digest, "source": source, "created_at": utc_now()}
    conn.execute(insert(scripts).values(row).on_conflict_do_nothing())
    _keep(digest, source)
    return digest


def source_changes(conn: sa.Connection, insert: Any, changes: dict[str, Any]) -> dict[str, Any]:
    """`changes` to an execution with a new `source` given as its `script` hash instead."""
    if "source" not in changes:
        return changes
    changes = dict(changes)
    changes["script"] = store_source(conn, insert, changes.pop("source"))
    changes["source"] = None
    return changes


def records(conn: sa.Connection, rows: Iterable[Any]) -> list[ExecutionRecord]:
    """The records of `executions` rows, each with its source's text (one query at most)."""
    rows = list(rows)
    wanted = {r.script for r in rows if r.source is None and r.script is not None}
    with _lock:
        found = {digest: _cache[digest] for digest in wanted if digest in _cache}
    missing = wanted - set(found)
    if missing:
        query = sa.select(scripts.c.hash, scripts.c.source).where(scripts.c.hash.in_(missing))
        for digest, source in conn.execute(query):
            found[digest] = source
            if source_hash(source) == digest:
                _keep(digest, source)
    return [execution_record(row, _text(row, found)) for row in rows]


def record(conn: sa.Connection, row: Any) -> ExecutionRecord:
    """The record of one `executions` row, with its source's text."""
    return records(conn, [row])[0]


def forget() -> None:
    """Drop the texts kept in this process (tests read a row edited in the database)."""
    with _lock:
        _cache.clear()


def _text(row: Any, found: dict[str, str]) -> str:
    if row.source is not None:
        return str(row.source)
    # A missing text (its row deleted by hand) reads as empty: the signature refuses it.
    return found.get(row.script, "")


def _keep(digest: str, source: str) -> None:
    with _lock:
        if len(_cache) >= CACHE_SIZE:
            _cache.clear()
        _cache[digest] = source

"""Executions and savepoints a page at a time, for the web view: filters, counts, windows."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from flowrt.status import Status
from flowrt.storage import scripts
from flowrt.storage.base import ExecutionRecord, SavepointRecord
from flowrt.storage.rows import is_uuid, savepoint_record
from flowrt.storage.schema import executions, savepoints
from flowrt.storage.schema import scripts as scripts_table

MAX_PAGE = 500  # rows one request reads at most, however many it asks for
MAX_OFFSET = 2**53  # past any table; the databases refuse offsets beyond 64 bits


@dataclass(frozen=True)
class ExecutionPage:
    """One page of executions, newest first, with how many match and the count per status."""

    rows: list[ExecutionRecord]
    total: int
    counts: dict[str, int] = field(default_factory=dict)
    heads: dict[str, SavepointRecord] = field(default_factory=dict)


def browse_executions(
    engine: sa.Engine,
    status: Status | None = None,
    flow: str | None = None,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> ExecutionPage:
    """The executions matching the filters (`search`: an id or its beginning), a page of them.

    `counts` counts every status among the executions matching `flow` and `search` (not
    `status`, so the page can show what each status filter would list).
    """
    c = executions.c
    where: list[sa.ColumnElement[bool]] = []
    if flow:
        where.append(c.flow_name == flow)
    if search:
        text = search.strip().lower()
        where.append(c.id == text if is_uuid(text) else _id_starts(engine, text))
    filtered = list(where)
    if status is Status.UNKNOWN:
        filtered.append(c.status.not_in([s.value for s in Status if s is not Status.UNKNOWN]))
    elif status is not None:
        filtered.append(c.status == status.value)
    limit, offset = max(0, min(limit, MAX_PAGE)), max(0, offset)
    query = (
        sa.select(executions)
        .where(*filtered)
        .order_by(c.created_at.desc(), c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with engine.begin() as conn:
        rows = scripts.records(conn, conn.execute(query))
        count = sa.select(sa.func.count()).select_from(executions).where(*filtered)
        total = conn.execute(count).scalar_one()
        by_status = sa.select(c.status, sa.func.count()).where(*where).group_by(c.status)
        counts: dict[str, int] = {}
        for value, n in conn.execute(by_status):
            key = value if value in Status.__members__ else Status.UNKNOWN.value
            counts[key] = counts.get(key, 0) + int(n)
        heads = [r.head_id for r in rows if r.head_id]
        found = conn.execute(sa.select(savepoints).where(savepoints.c.id.in_(heads)))
        head_rows = {row.id: savepoint_record(row) for row in found} if heads else {}
    return ExecutionPage(
        rows,
        int(total),
        counts,
        {r.id: head_rows[r.head_id] for r in rows if r.head_id in head_rows},
    )


def savepoint_window(
    engine: sa.Engine, execution_id: str, limit: int = 200, offset: int = 0
) -> tuple[list[SavepointRecord], int]:
    """Savepoints `offset`.. of the execution, in the order they were made, and how many."""
    if not is_uuid(execution_id):
        return [], 0
    s = savepoints.c
    limit, offset = max(0, min(limit, MAX_PAGE)), max(0, offset)
    query = (
        sa.select(savepoints)
        .where(s.execution_id == execution_id)
        .order_by(s.created_at, s.seq)
        .limit(limit)
        .offset(offset)
    )
    with engine.begin() as conn:
        rows = [savepoint_record(row) for row in conn.execute(query)]
        total = conn.execute(
            sa.select(sa.func.count()).where(s.execution_id == execution_id)
        ).scalar_one()
    return rows, int(total)


def current_branch(engine: sa.Engine, execution_id: str, head_id: str | None) -> set[str]:
    """The ids on the way from `head_id` back to the execution's first savepoint."""
    if head_id is None or not is_uuid(execution_id):
        return set()
    s = savepoints.c
    query = sa.select(s.id, s.parent_id).where(s.execution_id == execution_id)
    with engine.begin() as conn:
        parents = {row.id: row.parent_id for row in conn.execute(query)}
    branch: set[str] = set()
    at: str | None = head_id
    while at is not None and at in parents and at not in branch:
        branch.add(at)
        at = parents[at]
    return branch


def script_sources(engine: sa.Engine, short_hashes: set[str]) -> dict[str, str]:
    """The stored sources named by short hash (a savepoint's `script`: the first 12 hex digits
    of the SHA-256 that keys `scripts`). A text that does not hash to its name is left out."""
    wanted = {h for h in short_hashes if len(h) == 12 and all(c in "0123456789abcdef" for c in h)}
    if not wanted:
        return {}
    query = sa.select(scripts_table.c.source).where(
        sa.or_(*[scripts_table.c.hash.startswith(h) for h in sorted(wanted)])
    )
    with engine.begin() as conn:
        texts = [row.source for row in conn.execute(query)]
    found = {scripts.source_hash(text)[:12]: text for text in texts}
    return {h: found[h] for h in wanted if h in found}


def _id_starts(engine: sa.Engine, text: str) -> sa.ColumnElement[bool]:
    # Ids are UUIDs: stored as 32 hex digits on SQLite, as the uuid type (text with dashes)
    # on PostgreSQL. Anything but hex digits and dashes matches no id.
    if engine.dialect.name == "sqlite":
        text = text.replace("-", "")
    if not text or any(ch not in "0123456789abcdef-" for ch in text):
        return sa.false()
    return sa.cast(executions.c.id, sa.String).like(text + "%")

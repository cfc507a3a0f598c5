"""The periodic queries read partial indexes of due or held rows, never every sleeping one.

Each test captures the statements a store method sends, and asks the database (SQLite and
PostgreSQL alike) how it would run them: through the partial index meant for them, without
a full scan of `executions`. Timings are in bench/reaper.py, not here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from flowrt.storage import SqlStore
from flowrt.storage.schema import executions

NOW = datetime.now(UTC)


def _row(status: str, **values: Any) -> dict[str, Any]:
    row = {
        "id": str(uuid.uuid4()),
        "flow_name": "f",
        "source": "",
        "status": status,
        "version": 0,
        "inputs": {},
        "outputs": {},
        "created_at": NOW,
        "updated_at": NOW,
        "wake_at": None,
        "worker": None,
        "lease_until": None,
        "parent_id": None,
    }
    return {**row, **values}


@pytest.fixture
def filled(store: SqlStore) -> SqlStore:
    """A store with sleepers, running and held executions, parents waiting, and ended ones."""
    later, earlier = NOW + timedelta(days=1), NOW - timedelta(minutes=1)
    rows = [_row("WAITING", wake_at=later + timedelta(seconds=i)) for i in range(200)]
    rows += [_row("WAITING", wake_at=earlier), _row("RUNNING", lease_until=earlier)]
    rows += [_row("RUNNING", worker="w1@test", lease_until=later) for _ in range(3)]
    parent = _row("WAITING")
    rows += [parent, _row("ENDED_SUCCESS", parent_id=parent["id"], ended_at=NOW)]
    rows += [_row("ENDED_SUCCESS", ended_at=earlier) for _ in range(100)]
    with store.engine.begin() as conn:
        conn.execute(executions.insert(), rows)
        if store.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE executions")
    return store


@contextmanager
def captured(engine: sa.Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements on `executions` sent to `engine` inside the block, with parameters."""
    sent: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "executions" in statement and statement.lstrip().startswith(("SELECT", "UPDATE")):
            sent.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", keep)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", keep)


def plan(store: SqlStore, call: Callable[[SqlStore], object]) -> str:
    """How the database would run the one statement `call` sends (it is run too)."""
    with captured(store.engine) as sent:
        call(store)
    assert len(sent) == 1, sent
    statement, parameters = sent[0]
    with store.engine.connect() as conn:
        if store.engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            return "\n".join(str(row[-1]) for row in rows)
        conn.exec_driver_sql("SET enable_seqscan = off")  # so a small table still shows it
        rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters)
        return "\n".join(str(row[0]) for row in rows)


def full_scans(text: str) -> list[str]:
    """Lines of a plan that read the whole executions table."""
    return [
        line
        for line in text.splitlines()
        if ("Seq Scan on executions" in line)
        or (line.startswith("SCAN executions") and "USING" not in line)
    ]


def reads_every_waiting_row(text: str) -> bool:
    """True if a plan reads every WAITING row: through the plain status index, or the whole
    waiting index without a bound on the wake-up time (its condition)."""
    lines = text.splitlines()
    if "SEARCH" in text:  # SQLite, which shows no values
        return "ix_executions_status" in text or "ix_executions_waiting (status=?)" in text
    return any(
        ("ix_executions_status" in line and "WAITING" in following)
        or ("using ix_executions_waiting" in line and "wake_at" not in following)
        for line, following in zip(lines, [*lines[1:], ""], strict=True)
    )


def test_the_reapers_overdue_query_reads_only_due_sleeps_and_running_executions(filled):
    found = plan(filled, lambda s: s.overdue(datetime.now(UTC), 1000))
    # Running executions may come from either index on status: both hold only running rows.
    assert "ix_executions_waiting" in found and not reads_every_waiting_row(found), found
    assert not full_scans(found), found


def test_the_overdue_query_still_finds_a_due_sleep_and_an_expired_lease_and_nothing_else(filled):
    found = filled.overdue(datetime.now(UTC), 1000)
    assert sorted(r.status.value for r in found) == ["RUNNING", "WAITING"]


def test_waking_parents_reads_only_executions_waiting_without_a_wake_up_time(filled):
    found = plan(filled, lambda s: s.wake_parents(datetime.now(UTC)))
    assert "ix_executions_waiting" in found and not reads_every_waiting_row(found), found
    assert not full_scans(found), found
    assert filled.wake_parents(datetime.now(UTC)) == 0  # woken once, by the planned pass


def test_lease_renewals_and_a_stopping_workers_release_read_only_held_rows(filled):
    held = [r.id for r in filled.list_executions(limit=1000) if r.worker == "w1@test"]
    later = datetime.now(UTC) + timedelta(seconds=3)
    renewing = plan(filled, lambda s: s.renew_leases("w1@test", held, later))
    releasing = plan(filled, lambda s: s.release_worker("w1@test", datetime.now(UTC)))
    assert not full_scans(renewing), renewing
    assert "ix_executions_worker" in releasing and not full_scans(releasing), releasing


@pytest.mark.postgres
def test_on_postgresql_the_time_leads_each_partial_index_so_its_range_bounds_the_scan(pg_clean):
    # PostgreSQL leaves out of the index condition what the predicate implies (the status):
    # behind a leading status column, `wake_at <= now` would walk every sleeper's entry.
    engine = sa.create_engine(pg_clean)
    with engine.connect() as conn:
        found = dict(conn.exec_driver_sql("SELECT indexname, indexdef FROM pg_indexes").all())
    engine.dispose()
    assert "(wake_at) WHERE" in found["ix_executions_waiting"]


@pytest.mark.postgres
def test_no_index_covers_a_column_every_step_writes_so_its_update_stays_heap_only(pg_clean):
    # A step writes lease_until, version, head_id and updated_at each time: an index on any
    # of them would make every step's UPDATE write an entry into each index of the table.
    engine = sa.create_engine(pg_clean)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'executions'"
        ).all()
    engine.dispose()
    for name, definition in rows:
        for column in ("lease_until", "version", "head_id", "updated_at"):
            assert column not in definition, (name, definition)


def test_waking_lock_waiters_reads_only_executions_waiting_without_a_wake_up_time(filled):
    found = plan(filled, lambda s: s.wake_lock_waiters(datetime.now(UTC)))
    assert "ix_executions_waiting" in found and not reads_every_waiting_row(found), found
    assert not full_scans(found), found

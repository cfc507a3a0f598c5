"""One reaper pass with 10^4, 10^5 and 10^6 sleeping executions in PostgreSQL.

The sleepers are inserted directly (one INSERT ... SELECT generate_series), the table is
analysed as autovacuum would, and one `leases.reap` pass is timed several times: the
median is the figure. Target (issue 10): under 10 ms at 10^6 sleepers, and flat. For
comparison, the overdue query as it was before migration 0010 (one OR over both statuses,
read through the plain status index) is timed on the same rows, the indexes of 0010
dropped inside a transaction that is then rolled back.

Runs on a database of its own, `flowrt_bench_reaper`, created and dropped here; it needs
no broker. Alone: `.venv/bin/python bench/reaper.py [--quick]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report import Figure, ms  # noqa: E402

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
DATABASE = "flowrt_bench_reaper"
SECRET = b"bench-secret-0123456789abcdef"
FULL = (10_000, 100_000, 1_000_000)
QUICK = (1_000, 10_000)
PASSES = 15  # timed passes per size; the median is reported
TARGET_MS = 10.0

# Sleepers due in a day or more, one second apart, as a fleet of long sleeps would be.
INSERT_SLEEPERS = """
INSERT INTO executions (id, flow_name, source, status, version, inputs, outputs,
                        created_at, updated_at, wake_at, crashes)
SELECT gen_random_uuid(), 'sleeper', '', 'WAITING', 1, '{}', '{}', now(), now(),
       now() + interval '1 day' + i * interval '1 second', 0
FROM generate_series(1, %(count)s) AS i
"""


@dataclass(frozen=True)
class Pass:
    """Milliseconds of the reaper's passes, and of the old overdue query, at `sleepers`.

    `server_ms` is PostgreSQL's own execution time of the statements of one pass (EXPLAIN
    ANALYZE), which does not count round trips or Python, nor other processes' load.
    """

    sleepers: int
    reap_ms: list[float]
    server_ms: list[float]
    old_query_ms: list[float]


class _NoBroker:
    """A dispatcher that must not be needed: nothing is due among sleepers."""

    def enqueue_step(self, ticket: object, **_: object) -> None:
        raise AssertionError(f"the reaper sent a step among sleepers only: {ticket}")


def create_database() -> str:
    """A fresh database at flowrt's newest schema; returns its URL."""
    from flowrt.storage import migrate
    from flowrt.storage.sql import create_engine

    drop_database()
    _admin(f"CREATE DATABASE {DATABASE}")
    url = f"{PG_SERVER}/{DATABASE}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


def drop_database() -> None:
    _admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def _admin(statement: str) -> None:
    admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(statement)
    admin.dispose()


def _old_overdue(conn: sa.Connection, now: datetime) -> None:
    """The overdue query before migration 0010, with its statuses as parameters."""
    from flowrt.storage.schema import executions

    c = executions.c
    due = sa.or_(c.status == "RUNNING", sa.and_(c.status == "WAITING", c.wake_at <= now))
    lease_over = sa.or_(c.lease_until.is_(None), c.lease_until < now)
    query = sa.select(executions).where(due, lease_over)
    conn.execute(query.order_by(c.lease_until.is_not(None), c.lease_until).limit(1000)).all()


def _server_ms(engine: sa.Engine, reap: Any) -> float:
    """PostgreSQL's execution time of the statements one reaper pass sends, summed."""
    sent: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "executions" in statement and not statement.startswith("EXPLAIN"):
            sent.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", keep)
    try:
        reap()
    finally:
        sa.event.remove(engine, "before_cursor_execute", keep)
    total = 0.0
    with engine.connect() as conn:
        for statement, parameters in sent:
            explain = "EXPLAIN (ANALYZE, FORMAT JSON) " + statement
            total += conn.exec_driver_sql(explain, parameters).scalar_one()[0]["Execution Time"]
        conn.rollback()  # EXPLAIN ANALYZE runs an UPDATE for real
    return total


def _before_0010(engine: sa.Engine) -> list[float]:
    """The old overdue query's times, its indexes dropped in a transaction rolled back."""
    from flowrt.storage.schema import PARTIAL_INDEXES

    with engine.connect() as conn:
        for name in PARTIAL_INDEXES:
            conn.exec_driver_sql(f"DROP INDEX {name}")
        times = _timed(lambda: _old_overdue(conn, datetime.now(UTC)))
        conn.rollback()
    return times


def _timed(action: object) -> list[float]:
    times = []
    for _ in range(PASSES):
        began = time.perf_counter()
        action()  # type: ignore[operator]
        times.append((time.perf_counter() - began) * 1000)
    return times


def measure(sizes: tuple[int, ...] = FULL) -> list[Pass]:
    """Grow the sleepers to each size in turn and time the reaper at each."""
    from flowrt import leases
    from flowrt.options import Options
    from flowrt.runtime import Runtime
    from flowrt.storage import open_store

    url = create_database()
    store = open_store(url)
    runtime = Runtime(store, Options(secret=SECRET), _NoBroker(), worker="bench@reaper")
    passes, inserted = [], 0
    try:
        for size in sizes:
            with store.engine.begin() as conn:
                conn.exec_driver_sql(INSERT_SLEEPERS, {"count": size - inserted})
            inserted = size
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE executions")
            leases.reap(runtime)  # warm: connections, statement caches
            reap_ms = _timed(lambda: leases.reap(runtime))
            server_ms = [_server_ms(store.engine, lambda: leases.reap(runtime)) for _ in range(5)]
            old_ms = _before_0010(store.engine)
            passes.append(Pass(size, reap_ms, server_ms, old_ms))
    finally:
        runtime.close()
        store.close()
        drop_database()
    return passes


def figures(passes: list[Pass]) -> list[Figure]:
    """One line per size: the median pass, and the old query's median for comparison."""
    lines = []
    for p in passes:
        median = statistics.median(p.reap_ms)
        lines.append(
            Figure(
                f"reaper pass, {p.sleepers:,} sleeping",
                ms(median),
                f"{min(p.reap_ms):.2f}-{max(p.reap_ms):.2f} ms",
                f"< {TARGET_MS:g} ms, flat",
                median < TARGET_MS,
            )
        )
        server = statistics.median(p.server_ms)
        lines.append(Figure("  of it in PostgreSQL", ms(server), "", "(information)"))
        old = statistics.median(p.old_query_ms)
        lines.append(Figure("  overdue query before 0010", ms(old), "", "(information)"))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^3 and 10^4 sleepers only")
    args = parser.parse_args()
    from bench.report import print_table

    found = figures(measure(QUICK if args.quick else FULL))
    print(f"flowrt reaper bench: PostgreSQL {PG_SERVER}/{DATABASE}, median of {PASSES} passes")
    print_table(found)
    return 0 if all(f.met is not False for f in found) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Executions of flows started through flowrt's Python API, timed from their rows."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from bench.workers import wait_until

# The flow most figures time: `calls` cheap Flow-API calls, then an end.
LOOP_FLOW = """\
import flow_api


def handler(system, this, inputs):
    for i in range(inputs["calls"]):
        this.get("input_value")
    if inputs.get("fail"):
        this.error("loop done; ended in error so its savepoints can be restored")
    return this.success("loop done")
"""


@dataclass(frozen=True)
class Run:
    """Executions of the loop flow: their ids and created/ended times (database clock)."""

    ids: list[str]
    calls: int
    created: list[datetime]
    ended: list[datetime]

    @property
    def wall_s(self) -> float:
        return (max(self.ended) - min(self.created)).total_seconds()

    def per_call_ms(self) -> float:
        """Wall time over every call of every execution, in ms."""
        return self.wall_s * 1000 / (len(self.ids) * self.calls)

    def latency_ms(self) -> float:
        """Each execution's own time per call, averaged over the executions, in ms."""
        spans = [(e - c).total_seconds() for c, e in zip(self.created, self.ended, strict=True)]
        return statistics.mean(spans) * 1000 / self.calls


class Bench:
    """flowrt measurements through the Python API, against a running `tasks` worker."""

    def __init__(self, flow_path: str, engine: sa.Engine) -> None:
        self.flow_path, self.engine = flow_path, engine

    def run_flows(self, count: int, calls: int, timeout_s: float, fail: bool = False) -> Run:
        """Start `count` loop flows of `calls` calls at once and wait for all to end."""
        import flowrt

        handles = [
            flowrt.start(self.flow_path, {"calls": calls, "fail": fail}) for _ in range(count)
        ]
        ids = [h.id for h in handles]
        rows = self.wait_ended(ids, timeout_s)
        wanted = "ENDED_ERROR" if fail else "ENDED_SUCCESS"
        bad = [row for row in rows if row.status != wanted]
        if bad:
            raise RuntimeError(f"{len(bad)} executions ended {bad[0].status}: {bad[0].message}")
        # Each execution makes `calls` get() calls and one success()/error(); that is its steps.
        return Run(ids, calls + 1, [r.created_at for r in rows], [r.ended_at for r in rows])

    def wait_ended(self, ids: list[str], timeout_s: float) -> list[Any]:
        from flowrt.storage.schema import executions as ex

        query = sa.select(ex.c.id, ex.c.status, ex.c.message, ex.c.created_at, ex.c.ended_at)
        query = query.where(ex.c.id.in_(ids))

        def ended() -> list[Any] | None:
            with self.engine.connect() as conn:
                rows = list(conn.execute(query))
            return rows if all(row.status.startswith("ENDED_") for row in rows) else None

        return wait_until(ended, timeout_s, f"{len(ids)} executions to end")  # type: ignore[no-any-return]

    def restore_deep(self, execution_id: str, seq: int, timeout_s: float) -> tuple[float, float]:
        """Restore savepoint #`seq`; seconds until its next savepoint, and until the end."""
        import flowrt
        from flowrt.storage.schema import executions as ex
        from flowrt.storage.schema import savepoints as sp

        with self.engine.connect() as conn:
            target = conn.execute(
                sa.select(sp.c.id).where(sp.c.execution_id == execution_id, sp.c.seq == seq)
            ).scalar_one()
        handle = flowrt.get(execution_id)
        began = datetime.now(UTC)
        handle.restore(target, by="id")
        next_savepoint = sa.select(sa.func.min(sp.c.created_at)).where(
            sp.c.parent_id == target, sp.c.created_at > began
        )

        def moved_on() -> datetime | None:
            with self.engine.connect() as conn:
                return conn.execute(next_savepoint).scalar()  # type: ignore[no-any-return]

        saved_at = wait_until(moved_on, timeout_s, "the restored execution's next savepoint", 0.005)
        (row,) = self.wait_ended([execution_id], timeout_s)
        if row.status != "ENDED_ERROR":
            raise RuntimeError(f"the restored execution ended {row.status}: {row.message}")
        with self.engine.connect() as conn:
            ended_at = conn.execute(
                sa.select(ex.c.ended_at).where(ex.c.id == execution_id)
            ).scalar()
        return (saved_at - began).total_seconds(), (ended_at - began).total_seconds()

    def storage(self, execution_id: str) -> dict[str, float]:
        """Bytes per savepoint row of `execution_id` and of the whole table, and the answers'."""
        with self.engine.connect() as conn:
            one = conn.execute(
                sa.text(
                    "SELECT count(*) AS n, avg(pg_column_size(s.*)) AS row_bytes,"
                    " avg(coalesce(octet_length(s.answer), 0)) AS answer_bytes,"
                    " avg(coalesce(pg_column_size(s.variables), 0)) AS variables_bytes"
                    " FROM savepoints s WHERE s.execution_id = :e"
                ),
                {"e": execution_id},
            ).one()
            conn.exec_driver_sql("ANALYZE savepoints")
            table = conn.exec_driver_sql(
                "SELECT pg_total_relation_size('savepoints') AS total,"
                " pg_indexes_size('savepoints') AS indexes,"
                " (SELECT count(*) FROM savepoints) AS n,"
                " (SELECT avg(coalesce(octet_length(answer), 0)) FROM savepoints) AS answer_bytes"
            ).one()
        return {
            "rows": float(one.n),
            "row_bytes": float(one.row_bytes),
            "answer_bytes": float(one.answer_bytes),
            "variables_bytes": float(one.variables_bytes),
            "disk_bytes": table.total / table.n,
            "index_bytes": table.indexes / table.n,
            "table_answer_bytes": float(table.answer_bytes),
        }

    def count_savepoints(self, ids: list[str]) -> int:
        """Savepoints of the executions `ids`, every branch."""
        from flowrt.storage.schema import savepoints as sp

        query = sa.select(sa.func.count()).where(sp.c.execution_id.in_(ids))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

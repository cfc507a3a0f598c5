"""Steps per second of a burst on one worker with `-c 8` and `--autoscale=8,1`, and time to MAX."""

from __future__ import annotations

import functools
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from celery import Celery

from bench.executions import LOOP_FLOW, Bench, Run
from bench.report import Figure
from bench.workers import Worker, wait_until

MAX, MIN = 8, 1
# Seconds of idleness after which the autoscaled pool shrinks (Celery's AUTOSCALE_KEEPALIVE,
# 30 by default): short, so that the pool is back at MIN before the burst.
KEEPALIVE_S = "2"
# Client threads that start the burst's executions (one alone starts about 15 a second).
START_THREADS = 4
# A line of the worker's log (INFO) each time Celery's autoscaler grows the pool.
SCALED_UP = re.compile(
    r"^\[(?P<at>[-0-9]+ [0-9:,]+): INFO/\w+\] Scaling up (?P<n>\d+) processes", re.M
)


@dataclass(frozen=True)
class PoolRun:
    """One burst of executions on one worker process."""

    pool: str  # how the worker's pool was sized
    run: Run
    steps: int  # savepoints the burst stored
    to_max_s: float | None = None  # from the burst's first start to the pool at MAX (its log)
    seen_s: float | None = None  # ... to `inspect stats` first showing it at MAX
    grown_steps: int = 0  # savepoints stored once the pool was at MAX
    grown_wall_s: float = 0.0  # from then to the burst's last end

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.run.wall_s

    @property
    def starts_s(self) -> float:
        """From the first execution's creation to the last one's."""
        return (max(self.run.created) - min(self.run.created)).total_seconds()

    @property
    def grown_steps_per_s(self) -> float:
        return self.grown_steps / self.grown_wall_s if self.grown_wall_s else 0.0


def measure(
    count: int, calls: int, env: dict[str, str], home: Path, engine: sa.Engine
) -> list[PoolRun]:
    """The burst of `count` loop flows of `calls` calls on `-c MAX`, then on `--autoscale`."""
    flow_path = home / "loop.py"
    flow_path.write_text(LOOP_FLOW)
    bench = Bench(str(flow_path), engine)
    # Both at INFO, whatever --loglevel says: the autoscaler's "Scaling up" lines are read.
    fixed = Worker("tasks", "fixed", env, home / "pool-fixed.log", "INFO")
    scaled = Worker("tasks", "scaled", {**env, "AUTOSCALE_KEEPALIVE": KEEPALIVE_S},
                    home / "pool-scaled.log", "INFO")  # fmt: skip
    try:
        fixed.start("", MAX)
        bench.run_flows(4, 20, timeout_s=120)  # warm-up: connections, script cache
        run = burst(bench, count, calls)
        fixed.stop()
        runs = [PoolRun(f"-c {MAX}", run, bench.count_savepoints(run.ids))]
        scaled.start("", MAX, autoscale=f"{MAX},{MIN}")
        bench.run_flows(4, 20, timeout_s=120)
        wait_until(lambda: pool_size(scaled) == MIN, 60, "the pool to shrink back to MIN", 0.5)
        runs.append(burst_on_autoscaled(bench, scaled, count, calls))
    except BaseException:
        for worker in (fixed, scaled):
            print(f"--- {worker.node} log ---\n{worker.tail()}", file=sys.stderr)
        raise
    finally:
        fixed.stop()
        scaled.stop()
    return runs


def burst_on_autoscaled(bench: Bench, worker: Worker, count: int, calls: int) -> PoolRun:
    """The burst, while another thread polls the worker's stats until its pool is at MAX."""
    seen: list[datetime] = []
    began = datetime.now(UTC)

    def watch() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if pool_size(worker) == MAX:
                seen.append(datetime.now(UTC))
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    run = burst(bench, count, calls)
    watcher.join(5)
    steps = bench.count_savepoints(run.ids)
    at_max = grown_to_max_at(worker.log_path.read_text(errors="replace"), began)
    if at_max is None:
        return PoolRun(f"--autoscale={MAX},{MIN}", run, steps)
    from flowrt.storage.schema import savepoints as sp

    query = sa.select(sa.func.count()).where(
        sp.c.execution_id.in_(run.ids), sp.c.created_at >= at_max
    )
    with bench.engine.connect() as conn:
        grown = int(conn.execute(query).scalar_one())
    return PoolRun(
        f"--autoscale={MAX},{MIN}",
        run,
        steps,
        to_max_s=(at_max - began).total_seconds(),
        seen_s=(seen[0] - began).total_seconds() if seen else None,
        grown_steps=grown,
        grown_wall_s=(max(run.ended) - at_max).total_seconds(),
    )


def grown_to_max_at(log: str, since: datetime) -> datetime | None:
    """When the autoscaler's "Scaling up N processes." lines since `since` add up to MAX - MIN."""
    threads = MIN
    for match in SCALED_UP.finditer(log):
        at = datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S,%f").astimezone(UTC)
        if at < since:
            continue
        threads += int(match["n"])
        if threads >= MAX:
            return at
    return None


def burst(bench: Bench, count: int, calls: int) -> Run:
    """Start `count` loop flows from a few client threads at once; wait for all to end."""
    import flowrt

    client = flowrt.default_client()
    name, source = client.resolve_flow(bench.flow_path)
    inputs = {"calls": calls, "fail": False}
    with ThreadPoolExecutor(START_THREADS) as starters:
        ids = list(starters.map(lambda _: client.runtime.start(name, source, inputs).id,
                                range(count)))  # fmt: skip
    rows = bench.wait_ended(ids, timeout_s=600)
    bad = [row for row in rows if row.status != "ENDED_SUCCESS"]
    if bad:
        raise RuntimeError(f"{len(bad)} executions ended {bad[0].status}: {bad[0].message}")
    return Run(ids, calls + 1, [r.created_at for r in rows], [r.ended_at for r in rows])


def pool_size(worker: Worker) -> int | None:
    """The autoscaler's current pool size, as `celery inspect stats` reports it."""
    app = _control_app(worker.env["FLOWRT_BROKER_URL"])
    replies = app.control.inspect([worker.node_name], timeout=1.0, limit=1).stats() or {}
    current = replies.get(worker.node_name, {}).get("autoscaler", {}).get("current")
    return int(current) if current is not None else None


@functools.cache
def _control_app(broker_url: str) -> Celery:
    """A Celery app of its own for control messages, apart from the client starting the burst."""
    return Celery("bench-control", broker=broker_url, set_as_current=False)


def figures(runs: list[PoolRun], count: int, calls: int) -> list[Figure]:
    """Steps per second on each pool (ratio to `-c MAX`), and the time to MAX."""
    fixed, scaled = runs
    base = fixed.steps_per_s
    out = [
        Figure(f"steps/s, {count} executions x {calls} calls, 1 worker, {fixed.pool}",
               f"{base:.0f} steps/s", "1.00x", "(baseline of the pool figures)"),
        Figure(f"  same, {scaled.pool} (starting at MIN)", f"{scaled.steps_per_s:.0f} steps/s",
               f"{scaled.steps_per_s / base:.2f}x", "(information)"),
    ]  # fmt: skip
    if scaled.to_max_s is None:
        return [*out, Figure("  pool never seen at MAX", "-", "", "reaches MAX", False)]
    grown = scaled.grown_steps_per_s
    return [
        *out,
        Figure(f"  same, once grown to MAX ({scaled.grown_steps} steps)", f"{grown:.0f} steps/s",
               f"{grown / base:.2f}x", ">= 0.9x the fixed pool", grown >= 0.9 * base),
        Figure(f"burst of {count} new executions -> pool at MAX ({MAX})",
               f"{scaled.to_max_s:.2f} s", "", "(information)"),
        Figure("  inspect stats first showed it at MAX after",
               f"{scaled.seen_s:.2f} s" if scaled.seen_s is not None else "-"),
        Figure(f"  the client's {count} starts took", f"{scaled.starts_s:.2f} s"),
    ]  # fmt: skip

"""Steps per second of many executions at once, on one worker process and then on two."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from bench.executions import LOOP_FLOW, Bench
from bench.report import Figure
from bench.workers import Worker, wait_until


@dataclass(frozen=True)
class Throughput:
    """`executions` loop flows run at once on `workers` worker processes."""

    workers: int
    executions: int
    steps: int  # savepoints they stored
    wall_s: float  # from the first one's creation to the last one's end
    # Execution row updates per step: its commit, plus a claim whenever the step went through
    # the shared queue (past FLOWRT_STICKY_MAX) rather than the worker's own.
    updates_per_step: float

    @property
    def steps_per_s(self) -> float:
        """Steps over the wall time."""
        return self.steps / self.wall_s


def measure(
    count: int, calls: int, env: dict[str, str], home: Path, engine: sa.Engine
) -> list[Throughput]:
    """Run `count` executions of `calls` calls on 1, then on 2 fresh worker processes."""
    flow_path = home / "loop.py"
    flow_path.write_text(LOOP_FLOW)
    bench = Bench(str(flow_path), engine)
    return [run_on(processes, count, calls, bench, env, home) for processes in (1, 2)]


def run_on(
    processes: int, count: int, calls: int, bench: Bench, env: dict[str, str], home: Path
) -> Throughput:
    """One measurement on `processes` freshly started worker processes."""
    import config

    cfg = config.celery_config(config.load())
    workers = [
        Worker("tasks", f"throughput{processes}-{i}", env, home / f"throughput{processes}-{i}.log")
        for i in range(1, processes + 1)
    ]
    try:
        for worker in workers:
            worker.start(cfg["worker_pool"], cfg["worker_concurrency"])
        before = updates_so_far(bench.engine)
        # Warm-up: each worker's connections and script cache, on a few executions.
        warm = bench.run_flows(4 * processes, 20, timeout_s=120)
        run = bench.run_flows(count, calls, timeout_s=600)
    except BaseException:
        for worker in workers:
            print(f"--- {worker.node} log ---\n{worker.tail()}", file=sys.stderr)
        raise
    finally:
        for worker in workers:
            worker.stop()
    # The workers' backends have ended, so their statistics are in.
    updates = updates_so_far(bench.engine) - before
    steps = bench.count_savepoints(run.ids)
    all_steps = steps + bench.count_savepoints(warm.ids)
    return Throughput(processes, count, steps, run.wall_s, updates / all_steps)


def updates_so_far(engine: sa.Engine) -> int:
    """Updates of execution rows so far, once PostgreSQL's statistics stop moving.

    Each backend sends its statistics up to a second late, or when it ends.
    """
    query = sa.text(
        "SELECT coalesce(sum(n_tup_upd), 0) FROM pg_stat_user_tables WHERE relname = 'executions'"
    )
    readings: list[int] = []

    def settled() -> list[int] | None:  # a list, as 0 updates is an answer too
        with engine.connect() as conn:
            readings.append(int(conn.execute(query).scalar_one()))
        return readings[-1:] if readings[-2:-1] == readings[-1:] else None

    (updates,) = wait_until(settled, 10, "PostgreSQL's table statistics to settle", 0.5)
    return int(updates)


def figures(runs: list[Throughput], calls: int) -> list[Figure]:
    """Steps per second on each number of workers, and the second's ratio to the first."""
    one = runs[0]
    out = []
    for run in runs:
        plural = "process" if run.workers == 1 else "processes"
        out.append(
            Figure(
                f"steps/s, {run.executions} executions x {calls} calls, {run.workers} worker "
                f"{plural}",
                f"{run.steps_per_s:.0f} steps/s",
                f"{run.steps_per_s / one.steps_per_s:.2f}x",
                "(information)",
            )
        )
        out.append(Figure(f"  {run.steps} steps in", f"{run.wall_s:.2f} s"))
        out.append(Figure("  execution row updates per step", f"{run.updates_per_step:.2f}"))
    return out

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
    cpu_s: float  # the worker processes' CPU while they ran

    @property
    def cpu_ms(self) -> float:
        """The worker processes' CPU per step."""
        return self.cpu_s * 1000 / self.steps

    @property
    def steps_per_s(self) -> float:
        """Steps over the wall time."""
        return self.steps / self.wall_s


@dataclass(frozen=True)
class BareThroughput:
    """`chains` bare chains of `hops` hops at once on one worker process."""

    chains: int
    hops_per_s: float
    cpu_ms: float  # the worker's CPU per hop


def measure_bare(
    count: int, hops: int, env: dict[str, str], home: Path, redis_url: str
) -> BareThroughput:
    """`count` bare chains of `hops` hops at once, on one fresh bare-hop worker process."""
    import config
    from bench.calls import bare_timed, run_chains, started

    cfg = config.celery_config(config.load())
    worker = Worker("bench.barehop", "throughput-bare", env, home / "throughput-bare.log")
    with started(worker, cfg["worker_pool"], cfg["worker_concurrency"]):
        run_chains(redis_url, 4, 20, timeout_s=60)  # warm-up
        timed = bare_timed(worker, redis_url, None, count, hops)
    return BareThroughput(count, 1000 / timed.wall_ms, timed.cpu_ms)


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
        cpu_before = sum(worker.cpu_s() for worker in workers)
        run = bench.run_flows(count, calls, timeout_s=600)
        cpu_s = sum(worker.cpu_s() for worker in workers) - cpu_before
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
    return Throughput(processes, count, steps, run.wall_s, updates / all_steps, cpu_s)


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


def figures(bare: BareThroughput, runs: list[Throughput], calls: int) -> list[Figure]:
    """Bare hops per second, steps per second on each number of workers against them and
    against one worker process."""
    one = runs[0]
    against_bare = one.steps_per_s / bare.hops_per_s
    out = [
        Figure(f"hops/s, {bare.chains} bare chains x {calls} hops, 1 worker process",
               f"{bare.hops_per_s:.0f} hops/s", "", "(baseline)"),
        Figure("  worker CPU ms/hop", f"{bare.cpu_ms:.3f} ms"),
        Figure(f"steps/s, {one.executions} executions x {calls} calls, 1 worker process, vs bare",
               f"{one.steps_per_s:.0f} steps/s", f"{against_bare:.2f}x", ">= 0.7x bare chains",
               against_bare >= 0.7),
        Figure("  worker CPU ms/step", f"{one.cpu_ms:.3f} ms", f"{one.cpu_ms / bare.cpu_ms:.2f}x",
               "(information)"),
    ]  # fmt: skip
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

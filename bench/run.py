"""Measure DESIGN.md §6's figures on Redis and PostgreSQL against a bare Celery hop, in one run.

Usage (from the repository root): `.venv/bin/python bench/run.py [--quick] [--only GROUPS]`.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bench import autoscale, memory, reaper, recovery, throughput  # noqa: E402
from bench.executions import LOOP_FLOW, Bench  # noqa: E402
from bench.report import Figure, ms, print_table, ratio_figure, spread_text  # noqa: E402
from bench.workers import Worker  # noqa: E402

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
BENCH_DB = "flowrt_bench"
REDIS_URL = "redis://127.0.0.1:6379/14"
SECRET = "bench-secret-0123456789abcdef"


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does."""

    bare_hops: int  # hops of the single bare chain (run REPEATS times)
    bare_chain_hops: int  # hops of each of the `fleet` bare chains
    small_calls: int  # the short flow (run REPEATS times): scaling, the 1-execution figure
    big_calls: int  # the long flow: scaling, restore depth, storage
    fleet: int  # executions (and bare chains) run at once
    fleet_calls: int  # calls of each of those executions
    restores: int  # restores of the deep savepoint (the median is reported)
    kills: int  # kill -9 of the worker holding an execution (the max is reported)
    idle: int  # sleeping executions unloaded for the memory figure
    crowd: int  # executions run at once for steps/s on 1 and 2 worker processes
    crowd_calls: int  # calls of each of those executions
    sleepers: tuple[int, ...] = reaper.FULL  # sleeping executions the reaper is timed among


# Runs of the single bare chain and of the short flow; the median one is reported.
REPEATS = 3
FULL = Sizes(3000, 100, 1000, 10_000, 50, 200, 3, 3, 10_000, 200, 50)
QUICK = Sizes(300, 20, 100, 1000, 50, 20, 1, 1, 1000, 50, 20, reaper.QUICK)
# The figure groups `--only` picks from, in the order they run.
GROUPS = ("calls", "throughput", "autoscale", "recovery", "memory", "reaper")


# --- services ---------------------------------------------------------------------------------


def create_database() -> str:
    """A fresh `flowrt_bench` database at flowrt's newest schema; returns its URL."""
    from flowrt.storage import migrate
    from flowrt.storage.sql import create_engine

    drop_database()
    admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {BENCH_DB}")
    admin.dispose()
    url = f"{PG_SERVER}/{BENCH_DB}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


def clean_database(engine: sa.Engine) -> None:
    """Empty flowrt's tables, so one figure group's rows do not weigh on the next."""
    from flowrt.storage.schema import metadata

    names = ", ".join(table.name for table in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names}")


def drop_database() -> None:
    admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    admin.dispose()


# --- the bare hop -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Chains:
    """Bare chains run at once: ms per hop over all of them, and per chain."""

    throughput_ms: float
    latency_ms: float


def run_chains(count: int, hops: int, timeout_s: float) -> Chains:
    """Send `count` bare chains of `hops` hops each and wait for every one to end."""
    from bench import barehop

    client = redis.Redis.from_url(REDIS_URL)
    run_id = uuid.uuid4().hex
    started = time.time()
    for _ in range(count):
        barehop.hop.apply_async((run_id, hops - 1))
    ends: list[float] = []
    deadline = time.monotonic() + timeout_s
    while len(ends) < count:
        left_s = deadline - time.monotonic()
        if left_s <= 0:
            raise TimeoutError(f"{count - len(ends)} bare chains did not end in {timeout_s} s")
        item = client.blpop([barehop.done_key(run_id)], timeout=1)
        if item is not None:
            ends.append(float(item[1]))
    wall_s = max(ends) - started
    return Chains(
        throughput_ms=wall_s * 1000 / (count * hops),
        latency_ms=statistics.mean(end - started for end in ends) * 1000 / hops,
    )


# --- flowrt -----------------------------------------------------------------------------------


# --- the run ----------------------------------------------------------------------------------


def measure_bare(
    sizes: Sizes, env: dict[str, str], home: Path
) -> tuple[Chains, Chains, list[float]]:
    import config

    cfg = config.celery_config(config.load())
    worker = Worker("bench.barehop", "barehop", env, home / "barehop.log")
    try:
        worker.start(cfg["worker_pool"], cfg["worker_concurrency"])
        run_chains(1, 50, timeout_s=60)  # warm-up
        runs = [run_chains(1, sizes.bare_hops, timeout_s=120) for _ in range(REPEATS)]
        single = sorted(runs, key=lambda c: c.throughput_ms)[REPEATS // 2]
        spread = [c.throughput_ms for c in runs]
        fleet = run_chains(sizes.fleet, sizes.bare_chain_hops, timeout_s=120)
    except BaseException:
        print(f"--- barehop worker log ---\n{worker.tail()}", file=sys.stderr)
        raise
    finally:
        worker.stop()
    return single, fleet, spread


def measure_flowrt(
    sizes: Sizes, env: dict[str, str], home: Path, engine: sa.Engine
) -> dict[str, Any]:
    import config

    cfg = config.celery_config(config.load())
    flow_path = home / "loop.py"
    flow_path.write_text(LOOP_FLOW)
    bench = Bench(str(flow_path), engine)
    worker = Worker("tasks", "bench", env, home / "flowrt.log")
    out: dict[str, Any] = {"worker": worker}
    try:
        worker.start(cfg["worker_pool"], cfg["worker_concurrency"])
        out["pid"] = worker.pid
        bench.run_flows(1, 20, timeout_s=60)  # warm-up: connections, script cache
        runs = [bench.run_flows(1, sizes.small_calls, timeout_s=300) for _ in range(REPEATS)]
        out["small"] = sorted(runs, key=lambda r: r.wall_s)[REPEATS // 2]
        out["small_spread"] = [r.per_call_ms() for r in runs]
        out["big"] = bench.run_flows(1, sizes.big_calls, timeout_s=600, fail=True)
        out["fleet"] = bench.run_flows(sizes.fleet, sizes.fleet_calls, timeout_s=600)
        big_id = out["big"].ids[0]
        timings = [bench.restore_deep(big_id, sizes.big_calls, 120) for _ in range(sizes.restores)]
        out["restores"] = timings
        out["storage"] = bench.storage(big_id)
    except BaseException:
        print(f"--- flowrt worker log ---\n{worker.tail()}", file=sys.stderr)
        raise
    finally:
        worker.stop()
    return out


def report(
    sizes: Sizes, single: Chains, spread: list[float], chains: Chains, got: dict[str, Any]
) -> list[Figure]:
    base = single.throughput_ms
    small, big, fleet = got["small"], got["big"], got["fleet"]
    n = sizes.fleet
    restore_next = statistics.median(t[0] for t in got["restores"])
    restore_end = statistics.median(t[1] for t in got["restores"])
    scaling = big.wall_s / small.wall_s
    limit = 10.5 * (sizes.big_calls / sizes.small_calls) / 10
    st = got["storage"]
    over = st["disk_bytes"] - st["table_answer_bytes"]
    latency_ratio = fleet.latency_ms() / chains.latency_ms
    return [
        Figure("bare hop, 1 chain (baseline)", ms(base), "1.00x", "about 1 ms"),
        Figure(f"  median of {REPEATS} runs; range", spread_text(spread)),
        Figure(f"bare hop, {n} chains: ms/hop overall", ms(chains.throughput_ms),
               f"{chains.throughput_ms / base:.2f}x", "(information)"),
        Figure(f"bare hop, {n} chains: ms/hop per chain", ms(chains.latency_ms),
               f"{chains.latency_ms / base:.2f}x", "(information)"),
        ratio_figure(f"flowrt, 1 execution: ms/call ({small.calls} calls)",
                     small.per_call_ms(), base, 1.5),
        Figure(f"  median of {REPEATS} runs; range", spread_text(got["small_spread"])),
        ratio_figure(f"flowrt, 1 execution: ms/call ({big.calls} calls)",
                     big.per_call_ms(), base, None),
        ratio_figure(f"flowrt, {n} executions: ms/call overall", fleet.per_call_ms(), base, 1.5),
        Figure(f"  same, vs bare {n} chains", ms(fleet.per_call_ms()),
               f"{fleet.per_call_ms() / chains.throughput_ms:.2f}x", "(information)"),
        ratio_figure(f"flowrt, {n} executions: ms/call per execution",
                     fleet.latency_ms(), base, None),
        Figure(f"  same, vs bare {n} chains per chain", ms(fleet.latency_ms()),
               f"{latency_ratio:.2f}x", "<= 1.5x bare chain", latency_ratio <= 1.5),
        Figure(f"scaling: {big.calls - 1} vs {small.calls - 1} calls",
               f"{big.wall_s:.2f} s / {small.wall_s:.2f} s", f"{scaling:.2f}x",
               f"<= {limit:g}x", scaling <= limit),
        Figure(f"restore #{sizes.big_calls} -> next savepoint", f"{restore_next:.3f} s", "",
               "< 1 s", restore_next < 1.0),
        Figure(f"restore #{sizes.big_calls} -> execution ended", f"{restore_end:.3f} s", "",
               "(information)"),
        Figure("savepoint row on disk (table+index+toast)", f"{st['disk_bytes']:.0f} B"),
        Figure("  of which indexes", f"{st['index_bytes']:.0f} B"),
        Figure("  tuple (pg_column_size)", f"{st['row_bytes']:.0f} B"),
        Figure("  outcome blob (answer)", f"{st['answer_bytes']:.0f} B"),
        Figure("  variables snapshot", f"{st['variables_bytes']:.0f} B"),
        Figure("storage per savepoint beyond its outcome", f"{over:.0f} B", "", "< 300 B",
               over < 300),
        Figure("  tuple only, beyond its outcome", f"{st['row_bytes'] - st['answer_bytes']:.0f} B",
               "", "(information)"),
    ]  # fmt: skip


def run_calls(sizes: Sizes, env: dict[str, str], home: Path, engine: sa.Engine) -> list[Figure]:
    """The baseline and the per-call, scaling, restore and storage figures."""
    single, chains, spread = measure_bare(sizes, env, home)
    got = measure_flowrt(sizes, env, home, engine)
    return report(sizes, single, spread, chains, got)


def run_throughput(
    sizes: Sizes, env: dict[str, str], home: Path, engine: sa.Engine
) -> list[Figure]:
    """Steps per second on 1 and 2 worker processes."""
    runs = throughput.measure(sizes.crowd, sizes.crowd_calls, env, home, engine)
    return throughput.figures(runs, sizes.crowd_calls)


def run_autoscale(sizes: Sizes, env: dict[str, str], home: Path, engine: sa.Engine) -> list[Figure]:
    """Steps per second on -c 8 and --autoscale=8,1, and the time to grow to 8."""
    runs = autoscale.measure(sizes.crowd, sizes.crowd_calls, env, home, engine)
    return autoscale.figures(runs, sizes.crowd, sizes.crowd_calls)


def run_recovery(sizes: Sizes, env: dict[str, str], home: Path, engine: sa.Engine) -> list[Figure]:
    """Seconds from kill -9 of a worker to the next savepoint on another."""
    return recovery.figures(recovery.measure(sizes.kills, env, home, engine))


def run_memory(sizes: Sizes, env: dict[str, str], home: Path, engine: sa.Engine) -> list[Figure]:
    """A worker's memory, empty and with many sleeping executions unloaded."""
    return memory.figures(memory.measure(sizes.idle, env, home, engine))


def run_reaper(sizes: Sizes, env: dict[str, str], home: Path, engine: sa.Engine) -> list[Figure]:
    """One reaper pass among many sleeping executions, on a database of its own."""
    return reaper.figures(reaper.measure(sizes.sleepers))


RUNNERS: dict[str, Callable[[Sizes, dict[str, str], Path, sa.Engine], list[Figure]]] = {
    "calls": run_calls,
    "throughput": run_throughput,
    "autoscale": run_autoscale,
    "recovery": run_recovery,
    "memory": run_memory,
    "reaper": run_reaper,
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument(
        "--only",
        default=",".join(GROUPS),
        help=f"comma-separated figure groups to run, of {','.join(GROUPS)} (default: all)",
    )
    args = parser.parse_args()
    args.groups = [g for g in GROUPS if g in args.only.split(",")]
    unknown = set(args.only.split(",")) - set(GROUPS)
    if unknown or not args.groups:
        parser.error(f"--only takes groups of {','.join(GROUPS)}, not {args.only!r}")
    return args


def main() -> int:
    args = parse_args()
    sizes = QUICK if args.quick else FULL
    began = time.monotonic()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="flowrt-bench-") as tmp:
        home = Path(tmp)
        env = {
            "FLOWRT_HOME": str(home / "home"),
            "FLOWRT_SECRET": SECRET,
            "FLOWRT_DATABASE_URL": f"{PG_SERVER}/{BENCH_DB}",
            "FLOWRT_BROKER_URL": REDIS_URL,
        }
        os.environ.update(env)  # before flowrt or config read the environment
        worker_env = {**os.environ, **env, "PYTHONHASHSEED": "0"}
        broker = redis.Redis.from_url(REDIS_URL)
        broker.flushdb()
        create_database()
        engine = sa.create_engine(f"{PG_SERVER}/{BENCH_DB}")
        try:
            for group in args.groups:
                figures += RUNNERS[group](sizes, worker_env, home, engine)
                # Killed workers leave messages behind; no group should find another's.
                clean_database(engine)
                broker.flushdb()
        finally:
            import flowrt

            flowrt.shutdown()
            engine.dispose()
            drop_database()
            broker.flushdb()
    print(f"flowrt bench ({'quick' if args.quick else 'full'}; {','.join(args.groups)}): "
          f"Redis {REDIS_URL}, PostgreSQL {PG_SERVER}/{BENCH_DB}, {os.cpu_count()} cores, "
          f"worker pool threads x {worker_concurrency()}")  # fmt: skip
    print_table(figures)
    print(f"took {time.monotonic() - began:.0f} s")
    return 0 if all(f.met is not False for f in figures) else 1


def worker_concurrency() -> int:
    import config

    return config.load().worker_concurrency


if __name__ == "__main__":
    sys.exit(main())

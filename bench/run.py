"""Measure DESIGN.md §6's figures on Redis and PostgreSQL against a bare Celery hop, in one run.

Usage (from the repository root): `.venv/bin/python bench/run.py [--quick] [--only GROUPS]`.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bench import autoscale, calls, memory, reaper, recovery, throughput, workers  # noqa: E402
from bench.report import Figure, print_table  # noqa: E402

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


# Rounds of the bare hops and flowrt taking turns (bench/calls.py); the median is reported.
REPEATS = 5
FULL = Sizes(2000, 100, 1000, 10_000, 50, 100, 3, 3, 10_000, 200, 50)
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


# --- the figure groups --------------------------------------------------------------------


def run_calls(sizes: Sizes, env: dict[str, str], home: Path, engine: sa.Engine) -> list[Figure]:
    """Wall and worker CPU per step against the bare hop; scaling, restore and storage."""
    rounds, deep = calls.measure(sizes, REPEATS, env, home, engine, REDIS_URL)
    return calls.figures(rounds, deep, sizes)


def run_throughput(
    sizes: Sizes, env: dict[str, str], home: Path, engine: sa.Engine
) -> list[Figure]:
    """Steps per second on 1 and 2 worker processes."""
    bare = throughput.measure_bare(sizes.crowd, sizes.crowd_calls, env, home, REDIS_URL)
    runs = throughput.measure(sizes.crowd, sizes.crowd_calls, env, home, engine)
    return throughput.figures(bare, runs, sizes.crowd_calls)


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
    parser.add_argument(
        "--loglevel",
        default="WARNING",
        choices=["WARNING", "INFO"],
        help="the level every worker logs at, baseline and flowrt alike (default: WARNING)",
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
    workers.LOGLEVEL["level"] = args.loglevel
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
          f"worker pool threads x {worker_concurrency()}, workers at {args.loglevel}")  # fmt: skip
    print_table(figures)
    print(f"took {time.monotonic() - began:.0f} s")
    return 0 if all(f.met is not False for f in figures) else 1


def worker_concurrency() -> int:
    import config

    return config.load().worker_concurrency


if __name__ == "__main__":
    sys.exit(main())

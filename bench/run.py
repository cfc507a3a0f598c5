"""Measure DESIGN.md §6's figures on Redis and PostgreSQL against a bare Celery hop, in one run.

Usage (from the repository root): `.venv/bin/python bench/run.py [--quick]`. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bench.workers import Worker, wait_until  # noqa: E402

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
BENCH_DB = "flowrt_bench"
REDIS_URL = "redis://127.0.0.1:6379/14"
SECRET = "bench-secret-0123456789abcdef"

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
class Sizes:
    """How much work each measurement does."""

    bare_hops: int  # hops of the single bare chain (run REPEATS times)
    bare_chain_hops: int  # hops of each of the `fleet` bare chains
    small_calls: int  # the short flow (run REPEATS times): scaling, the 1-execution figure
    big_calls: int  # the long flow: scaling, restore depth, storage
    fleet: int  # executions (and bare chains) run at once
    fleet_calls: int  # calls of each of those executions
    restores: int  # restores of the deep savepoint (the median is reported)


# Runs of the single bare chain and of the short flow; the median one is reported.
REPEATS = 3
FULL = Sizes(3000, 100, 1000, 10_000, 50, 200, 3)
QUICK = Sizes(300, 20, 100, 1000, 50, 20, 1)


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


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One printed line: what, measured value, ratio, target and whether it is met."""

    name: str
    value: str
    ratio: str = ""
    target: str = ""
    met: bool | None = None


def print_table(figures: list[Figure]) -> None:
    header = Figure("figure", "measured", "ratio", "target (DESIGN.md §6)")
    widths = [
        max(len(getattr(f, k)) for f in [header, *figures]) for k in ("name", "value", "ratio")
    ]
    for figure in [header, *figures]:
        verdict = {None: "", True: "met", False: "NOT MET"}[figure.met]
        if figure is header:
            verdict = "verdict"
        print(
            f"{figure.name:<{widths[0]}}  {figure.value:>{widths[1]}}  {figure.ratio:>{widths[2]}}"
            f"  {figure.target:<26}  {verdict}"
        )


def ms(value: float) -> str:
    return f"{value:.3f} ms"


def spread_text(values_ms: list[float]) -> str:
    return f"{min(values_ms):.3f}-{max(values_ms):.3f} ms"


def ratio_figure(name: str, value_ms: float, base_ms: float, limit: float | None) -> Figure:
    ratio = value_ms / base_ms
    if limit is None:
        return Figure(name, ms(value_ms), f"{ratio:.2f}x", "(information)")
    return Figure(name, ms(value_ms), f"{ratio:.2f}x", f"<= {limit}x bare hop", ratio <= limit)


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    began = time.monotonic()
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
            single, chains, spread = measure_bare(sizes, worker_env, home)
            got = measure_flowrt(sizes, worker_env, home, engine)
        finally:
            import flowrt

            flowrt.shutdown()
            engine.dispose()
            drop_database()
            broker.flushdb()
    print(f"flowrt bench ({'quick' if args.quick else 'full'}): Redis {REDIS_URL}, "
          f"PostgreSQL {PG_SERVER}/{BENCH_DB}, {os.cpu_count()} cores, "
          f"worker pool threads x {worker_concurrency()}")  # fmt: skip
    figures = report(sizes, single, spread, chains, got)
    print_table(figures)
    print(f"took {time.monotonic() - began:.0f} s")
    return 0 if all(f.met is not False for f in figures) else 1


def worker_concurrency() -> int:
    import config

    return config.load().worker_concurrency


if __name__ == "__main__":
    sys.exit(main())

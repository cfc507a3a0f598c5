"""The cost of a Flow-API call against a bare Celery hop: worker CPU and wall time per step.

Each runs on a worker process of its own, of the same pool, concurrency and log level. The
machine is shared and noisy, so they are measured in rounds, on three workers started
together (on queues of their own): in each round the stock bare hop, the bare hop with
flowrt's kombu fix and flowrt take turns, one chain (execution) each and then a fleet.
Each round gives its own ratios; the median is reported, with the range.

CPU is the worker process's own user + system time (/proc/PID/stat), read just before the
work is sent and just after the last of it ends: every thread of the worker, Celery's
consumer loop included, and nothing of the client's.
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import redis
import sqlalchemy as sa

from bench.executions import LOOP_FLOW, Bench, Run
from bench.report import Figure, ms, spread_text
from bench.workers import Worker

T = TypeVar("T")


@dataclass(frozen=True)
class Chains:
    """Bare chains run at once: ms per hop over all of them, and per chain."""

    throughput_ms: float
    latency_ms: float


@dataclass(frozen=True)
class Timed:
    """Steps run on one worker: ms of wall time and of the worker's CPU per step."""

    wall_ms: float
    cpu_ms: float
    latency_ms: float  # each chain's (execution's) own ms per step, averaged


@dataclass(frozen=True)
class Round:
    """One round: the bare hop and flowrt, one chain (execution) and a fleet of them."""

    bare_one: Timed
    bare_fleet: Timed
    fixed_one: Timed  # the bare hop with flowrt's kombu fix (tasks/transport.py)
    fixed_fleet: Timed
    flowrt_one: Timed
    flowrt_fleet: Timed


def run_chains(
    redis_url: str, count: int, hops: int, timeout_s: float, queue: str | None = None
) -> Chains:
    """Send `count` bare chains of `hops` hops each (to `queue`, else the default queue) and
    wait for every one to end. A chain's later hops go to its worker's default queue."""
    from bench import barehop

    client = redis.Redis.from_url(redis_url)
    run_id = uuid.uuid4().hex
    started = time.time()
    for _ in range(count):
        barehop.hop.apply_async((run_id, hops - 1), queue=queue)
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


def on_cpu(worker: Worker, work: Callable[[], T]) -> tuple[T, float]:
    """`work()` and the CPU seconds `worker` used while it ran."""
    before = worker.cpu_s()
    done = work()
    return done, worker.cpu_s() - before


def bare_timed(worker: Worker, redis_url: str, queue: str | None, count: int, hops: int) -> Timed:
    """`count` bare chains of `hops` hops at once on a started worker consuming `queue` (or
    the default queue)."""
    chains, cpu_s = on_cpu(
        worker, lambda: run_chains(redis_url, count, hops, timeout_s=600, queue=queue)
    )
    return Timed(chains.throughput_ms, cpu_s * 1000 / (count * hops), chains.latency_ms)


def flowrt_timed(worker: Worker, bench: Bench, count: int, calls: int) -> tuple[Timed, Run]:
    """`count` loop flows of `calls` calls at once on a started worker."""
    run, cpu_s = on_cpu(worker, lambda: bench.run_flows(count, calls, timeout_s=600))
    steps = count * run.calls  # each call and the end are its steps
    return Timed(run.per_call_ms(), cpu_s * 1000 / steps, run.latency_ms()), run


# The queues of the two bare-hop workers, apart from flowrt's, so that all three can run at
# once and take turns: a slow spell of the machine then weighs on all of them alike.
BARE_QUEUE, FIXED_QUEUE = "bench.bare", "bench.barefix"


def measure(
    sizes: Any,
    repeats: int,
    env: dict[str, str],
    home: Path,
    engine: sa.Engine,
    redis_url: str,
) -> tuple[list[Round], dict[str, Any]]:
    """`repeats` rounds, each timing the stock bare hop, the bare hop with flowrt's kombu fix
    and flowrt in turn, on three workers started together; then the deep figures (scaling,
    restore, storage) on a worker of their own."""
    import config

    cfg = config.celery_config(config.load())
    pool, concurrency = cfg["worker_pool"], cfg["worker_concurrency"]
    flow_path = home / "loop.py"
    flow_path.write_text(LOOP_FLOW)
    bench = Bench(str(flow_path), engine)
    bare = Worker("bench.barehop", "barehop", {**env, "FLOWRT_QUEUE": BARE_QUEUE},
                  home / "barehop.log")  # fmt: skip
    fixed = Worker("bench.barehop", "barefix",
                   {**env, "FLOWRT_QUEUE": FIXED_QUEUE, "BENCH_REUSE_CLIENTS": "1"},
                   home / "barefix.log")  # fmt: skip
    worker = Worker("tasks", "bench", env, home / "flowrt.log")
    rounds: list[Round] = []
    with started(bare, pool, concurrency), started(fixed, pool, concurrency):
        with started(worker, pool, concurrency):
            for queue in (BARE_QUEUE, FIXED_QUEUE):  # warm-up: connections, script cache
                run_chains(redis_url, 1, 50, timeout_s=60, queue=queue)
            bench.run_flows(1, 20, timeout_s=60)
            for _ in range(repeats):
                ones = (
                    bare_timed(bare, redis_url, BARE_QUEUE, 1, sizes.bare_hops),
                    bare_timed(fixed, redis_url, FIXED_QUEUE, 1, sizes.bare_hops),
                    flowrt_timed(worker, bench, 1, sizes.small_calls)[0],
                )
                fleets = (
                    bare_timed(bare, redis_url, BARE_QUEUE, sizes.fleet, sizes.bare_chain_hops),
                    bare_timed(fixed, redis_url, FIXED_QUEUE, sizes.fleet, sizes.bare_chain_hops),
                    flowrt_timed(worker, bench, sizes.fleet, sizes.fleet_calls)[0],
                )
                rounds.append(Round(ones[0], fleets[0], ones[1], fleets[1], ones[2], fleets[2]))
    deep: dict[str, Any] = {}
    worker = Worker("tasks", "deep", env, home / "flowrt-deep.log")
    with started(worker, pool, concurrency):
        bench.run_flows(1, 20, timeout_s=60)
        deep["small"] = bench.run_flows(1, sizes.small_calls, timeout_s=600)
        deep["big"] = bench.run_flows(1, sizes.big_calls, timeout_s=600, fail=True)
        big_id = deep["big"].ids[0]
        deep["restores"] = [
            bench.restore_deep(big_id, sizes.big_calls, 120) for _ in range(sizes.restores)
        ]
        deep["storage"] = bench.storage(big_id)
    return rounds, deep


class started:
    """Start a worker for a `with` block, print its log's end if the block fails, stop it."""

    def __init__(self, worker: Worker, pool: str, concurrency: int) -> None:
        self.worker, self.pool, self.concurrency = worker, pool, concurrency

    def __enter__(self) -> Worker:
        try:
            return self.worker.start(self.pool, self.concurrency)
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise

    def __exit__(self, kind: Any, *_: Any) -> None:
        if kind is not None:
            print(f"--- {self.worker.node} log ---\n{self.worker.tail()}", file=sys.stderr)
        self.worker.stop()


def ratios(pairs: list[tuple[Timed, Timed]]) -> tuple[list[float], list[float]]:
    """Each round's wall and CPU ratio of its (flowrt, baseline) pair."""
    return (
        [mine.wall_ms / base.wall_ms for mine, base in pairs],
        [mine.cpu_ms / base.cpu_ms for mine, base in pairs],
    )


def ratio_range(ratios: list[float]) -> str:
    """The range of the rounds' ratios as printed."""
    return f"{min(ratios):.2f}-{max(ratios):.2f}x"


def figures(rounds: list[Round], deep: dict[str, Any], sizes: Any) -> list[Figure]:
    """The per-step table: both ratios per round (median and range), then the deep figures."""
    n, count = sizes.fleet, len(rounds)

    def med(values: list[float]) -> float:
        return statistics.median(values)

    out = [
        Figure(f"bare hop, 1 chain: wall ms/hop (median of {count} rounds)",
               ms(med([r.bare_one.wall_ms for r in rounds])), "1.00x", "(baseline)"),
        Figure("  worker CPU ms/hop", ms(med([r.bare_one.cpu_ms for r in rounds])), "1.00x",
               "(baseline)"),
        Figure("  rounds' wall; CPU", spread_text([r.bare_one.wall_ms for r in rounds]),
               spread_text([r.bare_one.cpu_ms for r in rounds])),
        Figure(f"bare hop, {n} chains: wall ms/hop overall",
               ms(med([r.bare_fleet.wall_ms for r in rounds])), "", "(baseline)"),
        Figure("  worker CPU ms/hop", ms(med([r.bare_fleet.cpu_ms for r in rounds])), "",
               "(baseline)"),
    ]  # fmt: skip
    pairs = [
        ("1 execution", sizes.small_calls, [(r.flowrt_one, r.bare_one) for r in rounds]),
        (f"{n} executions", sizes.fleet_calls, [(r.flowrt_fleet, r.bare_fleet) for r in rounds]),
    ]
    for label, calls, pair in pairs:
        wall_ratios, cpu_ratios = ratios(pair)
        wall_ratio, cpu_ratio = med(wall_ratios), med(cpu_ratios)
        out += [
            Figure(f"flowrt, {label} x {calls} calls: wall ms/call",
                   ms(med([mine.wall_ms for mine, _ in pair])), f"{wall_ratio:.2f}x",
                   "<= 1.2x bare hop", wall_ratio <= 1.2),
            Figure("  rounds' wall ratios", ratio_range(wall_ratios)),
            Figure("  worker CPU ms/call", ms(med([mine.cpu_ms for mine, _ in pair])),
                   f"{cpu_ratio:.2f}x", "<= 1.3x bare hop", cpu_ratio <= 1.3),
            Figure("  rounds' CPU ratios", ratio_range(cpu_ratios)),
        ]  # fmt: skip
    for label, pair in [
        ("1 execution", [(r.flowrt_one, r.fixed_one) for r in rounds]),
        (f"{n} executions", [(r.flowrt_fleet, r.fixed_fleet) for r in rounds]),
    ]:
        wall_ratios, cpu_ratios = ratios(pair)
        out += [
            Figure(f"  {label}, vs a bare hop with flowrt's kombu fix: wall",
                   ms(med([bare.wall_ms for _, bare in pair])), f"{med(wall_ratios):.2f}x",
                   "(information)"),
            Figure("    worker CPU", ms(med([bare.cpu_ms for _, bare in pair])),
                   f"{med(cpu_ratios):.2f}x", "(information)"),
        ]  # fmt: skip
    latency = med([r.flowrt_fleet.latency_ms / r.bare_fleet.latency_ms for r in rounds])
    out.append(
        Figure(f"flowrt, {n} executions: ms/call per execution",
               ms(med([r.flowrt_fleet.latency_ms for r in rounds])), f"{latency:.2f}x",
               "<= 1.5x bare chain", latency <= 1.5)
    )  # fmt: skip
    return out + deep_figures(deep, sizes)


def deep_figures(deep: dict[str, Any], sizes: Any) -> list[Figure]:
    """Scaling, the deep restore and storage per savepoint."""
    small, big = deep["small"], deep["big"]
    restore_next = statistics.median(t[0] for t in deep["restores"])
    restore_end = statistics.median(t[1] for t in deep["restores"])
    scaling = big.wall_s / small.wall_s
    limit = 10.5 * (sizes.big_calls / sizes.small_calls) / 10
    st = deep["storage"]
    over = st["disk_bytes"] - st["table_answer_bytes"]
    return [
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

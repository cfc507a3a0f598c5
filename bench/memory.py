"""Worker memory with thousands of sleeping executions unloaded, against its empty size."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from bench.report import Figure
from bench.workers import Worker, wait_until

# Two calls, then a sleep far above FLOWRT_SLEEP_MAX_SECONDS: the worker unloads it at once.
SLEEPER_FLOW = """\
import flow_api


def handler(system, this, inputs):
    this.get("input_value")
    this.log("going to sleep", inputs["n"])
    this.sleep(3600)
    return this.success("woke up")
"""

TARGET_MB = 50.0
WARM_UP = 20  # executions run before the empty size is read, so imports and caches exist
# Client threads that start executions: each start is one INSERT and one publish, which
# wait on PostgreSQL and Redis more than on Python.
START_THREADS = 4
# Seconds the worker is left alone before its size is read: its last steps end, the lease
# heartbeat passes, and the garbage collector runs. Nothing observable marks that moment.
SETTLE_S = 3.0


@dataclass(frozen=True)
class Memory:
    """A worker's resident size before and after `count` executions were unloaded."""

    count: int
    empty_mb: float
    idle_mb: float
    peak_mb: float
    start_s: float  # the client's time to start all of them
    unloaded_s: float  # from the first start until every one was unloaded


def measure(count: int, env: dict[str, str], home: Path, engine: sa.Engine) -> Memory:
    """Run one worker; read its RSS empty, then with `count` sleeping executions unloaded."""
    import config

    cfg = config.celery_config(config.load())
    flow_path = home / "sleeper.py"
    flow_path.write_text(SLEEPER_FLOW)
    worker = Worker("tasks", "memory", env, home / "memory.log")
    try:
        worker.start(cfg["worker_pool"], cfg["worker_concurrency"])
        start_many(str(flow_path), WARM_UP)
        wait_unloaded(engine, "sleeper", WARM_UP, timeout_s=60)
        time.sleep(SETTLE_S)
        empty_mb = worker.rss_mb()
        began = time.monotonic()
        start_many(str(flow_path), count)
        start_s = time.monotonic() - began
        wait_unloaded(engine, "sleeper", WARM_UP + count, timeout_s=60 + count * 0.05)
        unloaded_s = time.monotonic() - began
        time.sleep(SETTLE_S)
        return Memory(count, empty_mb, worker.rss_mb(), worker.peak_rss_mb(), start_s, unloaded_s)
    except BaseException:
        print(f"--- memory worker log ---\n{worker.tail()}", file=sys.stderr)
        raise
    finally:
        worker.stop()


def start_many(flow_path: str, count: int) -> None:
    """Start `count` executions of the flow at `flow_path`, from a few client threads."""
    import flowrt

    client = flowrt.default_client()
    name, source = client.resolve_flow(flow_path)

    def start(n: int) -> None:
        client.runtime.start(name, source, {"n": n})

    with ThreadPoolExecutor(START_THREADS) as pool:
        list(pool.map(start, range(count)))


def wait_unloaded(engine: sa.Engine, flow_name: str, count: int, timeout_s: float) -> None:
    """Wait until `count` executions of `flow_name` wait unloaded (no worker holds them)."""
    from flowrt.storage.schema import executions as ex

    query = sa.select(
        sa.func.count().filter(ex.c.status == "WAITING", ex.c.worker.is_(None)),
        sa.func.count().filter(ex.c.status.like("ENDED_%")),
    ).where(ex.c.flow_name == flow_name)

    def unloaded() -> bool:
        with engine.connect() as conn:
            waiting, ended = conn.execute(query).one()
        if ended:
            raise RuntimeError(f"{ended} {flow_name} executions ended instead of sleeping")
        return bool(waiting >= count)

    wait_until(unloaded, timeout_s, f"{count} {flow_name} executions to be unloaded", 0.5)


def figures(memory: Memory) -> list[Figure]:
    """The empty and idle sizes, and the growth against the target."""
    growth = memory.idle_mb - memory.empty_mb
    return [
        Figure("worker RSS, empty (after warm-up)", f"{memory.empty_mb:.1f} MB"),
        Figure(f"worker RSS, {memory.count} executions unloaded", f"{memory.idle_mb:.1f} MB"),
        Figure("  growth over empty", f"{growth:+.1f} MB", "", f"<= {TARGET_MB:g} MB",
               growth <= TARGET_MB),
        Figure("  peak RSS (VmHWM) of the worker", f"{memory.peak_mb:.1f} MB", "",
               "(information)"),
        Figure(f"  {memory.count} starts from the client took", f"{memory.start_s:.1f} s", "",
               "(information)"),
        Figure("  all unloaded, from the first start", f"{memory.unloaded_s:.1f} s", "",
               "(information)"),
    ]  # fmt: skip

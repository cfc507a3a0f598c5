"""Recovery after kill -9: seconds until another worker stores the execution's next savepoint."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.report import Figure
from bench.workers import Beat, Worker, wait_until

# Keeps moving without end: a cheap call, then a short in-memory sleep, over and over.
TICK_FLOW = """\
import flow_api


def handler(system, this, inputs):
    for i in range(inputs["ticks"]):
        this.get("input_value")
        this.sleep(inputs["pause_s"])
    return this.success("ticked")
"""

TARGET_S = 5.0
# A kill is given up on after this long; the round then counts as not recovered.
RECOVERY_TIMEOUT_S = 60.0


class _Moved(Exception):
    """Raised when the execution had moved to the other worker before the kill landed."""


class Fleet:
    """The `tasks` workers of the recovery figure, each started once under its own node name."""

    def __init__(self, env: dict[str, str], home: Path) -> None:
        import config

        self.env, self.home = env, home
        self.cfg = config.celery_config(config.load())
        self.started: list[Worker] = []

    def spawn(self) -> Worker:
        """Start one more worker, `recoveryN`, and wait until it is ready."""
        node = f"recovery{len(self.started) + 1}"
        worker = Worker("tasks", node, self.env, self.home / f"{node}.log")
        self.started.append(worker)
        return worker.start(self.cfg["worker_pool"], self.cfg["worker_concurrency"])

    def alive(self) -> list[Worker]:
        """The started workers that still run."""
        return [w for w in self.started if w.proc is not None and w.proc.poll() is None]

    def stop(self) -> None:
        """Stop every worker still running."""
        for worker in self.started:
            worker.stop()

    def tails(self) -> str:
        """The end of every worker's log."""
        return "\n".join(f"--- {w.node} log ---\n{w.tail()}" for w in self.started)


def measure(kills: int, env: dict[str, str], home: Path, engine: sa.Engine) -> list[float | None]:
    """Kill the worker holding a moving execution `kills` times, with 2 workers and beat.

    Returns, per kill, the seconds from SIGKILL to the `created_at` of the execution's next
    savepoint stored by the surviving worker; None when that did not happen in time.
    """
    import flowrt

    flow_path = home / "tick.py"
    flow_path.write_text(TICK_FLOW)
    fleet, beat = Fleet(env, home), Beat(env, home)
    seconds: list[float | None] = []
    try:
        fleet.spawn(), fleet.spawn()
        beat.start()
        handle = flowrt.start(str(flow_path), {"ticks": 10**7, "pause_s": 0.05})
        attempts = 0
        while len(seconds) < kills and attempts < 2 * kills:
            attempts += 1
            try:
                seconds.append(kill_holder(handle, fleet.alive(), engine))
            except _Moved as moved:
                print(f"recovery: {moved}; killing again", file=sys.stderr)
            if len(seconds) < kills:
                fleet.spawn()  # the replacement: two workers again, one of them fresh
        handle.cancel()
    except BaseException:
        print(f"{fleet.tails()}\n--- beat log ---\n{beat.log_path.read_text()}", file=sys.stderr)
        raise
    finally:
        beat.stop()
        fleet.stop()
    return seconds


def kill_holder(handle: Any, alive: list[Worker], engine: sa.Engine) -> float | None:
    """SIGKILL the worker holding `handle`'s execution; seconds until the other took it on."""
    from flowrt.status import Status

    nodes = {worker.node_name: worker for worker in alive}

    def held() -> Any:
        record = handle.record()
        moving = record.status == Status.RUNNING and record.worker in nodes
        return record if moving and last_seq(engine, handle.id) >= 4 else None

    record = wait_until(held, 60, "the execution to run on one of the workers", 0.05)
    victim = nodes[record.worker]
    (survivor,) = (worker for worker in alive if worker is not victim)
    killed_at = datetime.now(UTC)
    victim.kill()
    # Read after the kill: the victim can no longer store anything, so a higher seq is the
    # survivor's work.
    before = last_seq(engine, handle.id)
    if handle.record().worker == survivor.node_name:
        raise _Moved(f"the execution was on {survivor.node_name}, not {victim.node_name}")

    def taken_on() -> datetime | None:
        saved_at = first_after(engine, handle.id, before)
        if saved_at is None or handle.record().worker != survivor.node_name:
            return None
        return saved_at

    try:
        saved_at = wait_until(taken_on, RECOVERY_TIMEOUT_S, "recovery", 0.02)
    except TimeoutError:
        return None
    return float((saved_at - killed_at).total_seconds())


def last_seq(engine: sa.Engine, execution_id: str) -> int:
    """The highest savepoint seq of the execution, or -1 when it has none."""
    from flowrt.storage.schema import savepoints as sp

    query = sa.select(sa.func.max(sp.c.seq)).where(sp.c.execution_id == execution_id)
    with engine.connect() as conn:
        value = conn.execute(query).scalar()
    return -1 if value is None else int(value)


def first_after(engine: sa.Engine, execution_id: str, seq: int) -> datetime | None:
    """When the execution's first savepoint after `seq` was stored, if there is one."""
    from flowrt.storage.schema import savepoints as sp

    query = sa.select(sp.c.created_at).where(sp.c.execution_id == execution_id, sp.c.seq > seq)
    with engine.connect() as conn:
        return conn.execute(query.order_by(sp.c.seq).limit(1)).scalar()  # type: ignore[no-any-return]


def figures(seconds: list[float | None]) -> list[Figure]:
    """One line per kill, then the worst of them against the target."""

    def text(value: float | None) -> str:
        return f"{value:.2f} s" if value is not None else f"> {RECOVERY_TIMEOUT_S:.0f} s"

    rows = [
        Figure(f"  kill {i}", text(value), "", "(information)")
        for i, value in enumerate(seconds, 1)
    ]
    worst = None if None in seconds or not seconds else max(s for s in seconds if s is not None)
    head = Figure(
        f"kill -9 -> next savepoint on another worker (max of {len(seconds)})",
        text(worst),
        "",
        f"< {TARGET_S:g} s",
        worst is not None and worst < TARGET_S,
    )
    return [head, *rows]

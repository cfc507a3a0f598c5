"""How much work there is: runnable and waiting executions, and those each worker holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from flowrt.storage.schema import HELD, RUNNING, WAITING, executions


@dataclass(frozen=True)
class Backlog:
    """The counts `flowrt stats` prints and KEDA's query scales on, at `measured_at`.

    `runnable` are RUNNING executions and WAITING ones whose wake-up is due: each wants a
    worker thread now (the number KEDA's query counts). `waiting` are the other WAITING
    ones: sleeping, or waiting for children; they hold no worker. `live` is, per worker
    node name, how many executions it holds (loaded in its memory or stepping there).
    """

    measured_at: datetime
    runnable: int
    waiting: int
    live: dict[str, int] = field(default_factory=dict)


def measure(engine: sa.Engine, now: datetime) -> Backlog:
    """Count through the partial indexes of migration 0010, the counts in one statement."""
    c = executions.c
    running = sa.select(sa.func.count()).where(RUNNING).scalar_subquery()
    due = sa.select(sa.func.count()).where(WAITING, c.wake_at <= now).scalar_subquery()
    waiting = sa.select(sa.func.count()).where(WAITING).scalar_subquery()
    held = sa.select(c.worker, sa.func.count()).where(HELD).group_by(c.worker).order_by(c.worker)
    with engine.begin() as conn:
        n_running, n_due, n_waiting = conn.execute(sa.select(running, due, waiting)).one()
        live = {str(worker): int(n) for worker, n in conn.execute(held)}
    return Backlog(now, int(n_running + n_due), int(n_waiting - n_due), live)

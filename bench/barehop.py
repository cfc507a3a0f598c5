"""The baseline: a bare Celery task that re-enqueues itself, on flowrt's own Celery config
but Celery's own thread pool (of the same size).

Start a worker with `python -m celery -A bench.barehop worker` (cwd: the repository root) and
the FLOWRT_* variables of the run; `bench/run.py` does both. The last hop of a chain pushes
its wall-clock end time onto a Redis list, so the runner can wait on it with BLPOP.

Stock Celery and kombu by default. With BENCH_REUSE_CLIENTS=1 in its environment it takes
the kombu fix flowrt's workers run with (tasks/transport.py: one Redis client per channel),
so that flowrt's own cost per step can be told from what that fix saves.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import redis
from celery import Celery

import config

if os.environ.get("BENCH_REUSE_CLIENTS") == "1":
    # By file: importing the `tasks` package would build flowrt's app in this worker too.
    _spec = importlib.util.spec_from_file_location(
        "flowrt_transport", Path(__file__).resolve().parent.parent / "tasks" / "transport.py"
    )
    assert _spec is not None and _spec.loader is not None
    _transport = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_transport)
    _transport.reuse_redis_clients()

HOP = "bench.hop"

settings = config.load()
app = Celery("barehop", set_as_current=False)
app.conf.update(config.celery_config(settings))
# Celery's own thread pool: flowrt's (tasks.pool) would import the `tasks` package, which
# builds flowrt's app and with it flowrt's kombu fix, and the baseline would not be stock.
app.conf.worker_pool = "threads"
_redis = redis.Redis.from_url(settings.broker_url)


def done_key(run_id: str) -> str:
    """The Redis list a chain of `run_id` reports its end on."""
    return f"bench:barehop:done:{run_id}"


@app.task(name=HOP, shared=False)
def hop(run_id: str, remaining: int) -> None:
    """Send the next hop of the chain, or report its end when none is left."""
    if remaining > 0:
        hop.apply_async((run_id, remaining - 1))
    else:
        _redis.rpush(done_key(run_id), repr(time.time()))

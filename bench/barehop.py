"""The baseline: a bare Celery task that re-enqueues itself, on flowrt's own Celery config.

Start a worker with `python -m celery -A bench.barehop worker` (cwd: the repository root) and
the FLOWRT_* variables of the run; `bench/run.py` does both. The last hop of a chain pushes
its wall-clock end time onto a Redis list, so the runner can wait on it with BLPOP.
"""

from __future__ import annotations

import time

import redis
from celery import Celery

import config

HOP = "bench.hop"

settings = config.load()
app = Celery("barehop", set_as_current=False)
app.conf.update(config.celery_config(settings))
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

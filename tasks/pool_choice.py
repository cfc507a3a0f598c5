"""Which Celery pool a flowrt worker runs: flowrt's own; any other is refused at start, saying why.

Celery's command line takes `-P prefork` for "no choice made" and silently swaps in the pool
the configuration names, so a user who asked for prefork would get threads without a word.
This check looks at what was asked (the command line, the environment, `worker_pool`) as
well as at what Celery resolved, and stops the worker before it takes any message.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from celery import concurrency

FLOWRT_POOL = "tasks.pool:StepPool"
CELERY_THREADS = "celery.concurrency.thread:TaskPool"
EXIT_WRONG_POOL = os.EX_CONFIG  # 78: the worker's configuration cannot work

_WHY = {
    "prefork": "it runs steps in child processes, and a step that lands in another child than "
    "the one holding its live execution must replay the whole journal",
    "solo": "it runs one step at a time on the thread that receives messages, so one long "
    "Flow-API call holds up every other execution of the worker",
    "gevent": "it turns threads into greenlets, and a live execution's handler is parked on a "
    "thread of its own that must resume where it began",
    "threads": "Celery's thread pool has a fixed size: --autoscale needs flowrt's pool, which "
    "can grow and shrink",
}
_WHY["eventlet"] = _WHY["gevent"]


def refuse_other_pools(worker: Any) -> None:
    """Exit (status 78), saying why on stderr, when `worker` is to run a pool flowrt refuses."""
    refused = refused_pool(worker)
    if refused is None:
        return
    sys.stderr.write(refusal(refused) + "\n")
    sys.stderr.flush()
    raise SystemExit(EXIT_WRONG_POOL)


def refused_pool(worker: Any) -> str | None:
    """The name of the pool `worker` was given that flowrt refuses, or None when all is well.

    Celery's own thread pool is accepted without `--autoscale`: it keeps steps in the process
    (the embedded worker runs on it), it just cannot change its size.
    """
    autoscale = bool(getattr(worker, "options", {}).get("autoscale"))
    asked = [_asked_on_command_line(), worker.app.conf.worker_pool, worker.pool_cls]
    for pool in asked:
        name = pool_name(pool)
        if name is None or name == FLOWRT_POOL or (name == "threads" and not autoscale):
            continue
        return name
    return None


def pool_name(pool: Any) -> str | None:
    """A pool's alias (`prefork`, `threads`, ...) or, for flowrt's and unknown ones, its path."""
    if pool is None or pool == "":
        return None
    if isinstance(pool, type):
        path = f"{pool.__module__}:{pool.__qualname__}"
    else:
        path = concurrency.ALIASES.get(str(pool), str(pool))
    if path == FLOWRT_POOL:
        return FLOWRT_POOL
    aliases = [a for a, p in concurrency.ALIASES.items() if p == path and a != "processes"]
    return aliases[0] if aliases else path


def refusal(name: str) -> str:
    """What the worker says when it refuses pool `name`: why, and what to do instead."""
    why = _WHY.get(name, "flowrt cannot tell how it runs steps")
    return (
        f"flowrt refuses the {name!r} worker pool: {why}. A flowrt worker keeps each running "
        "execution live in its own process between steps and sends the next step to its own "
        "queue, so its steps must run on threads of that process, in flowrt's pool (the "
        "default). Drop -P/--pool (and any worker_pool setting); to run more steps at once use "
        "-c N, --autoscale=MAX,MIN, or more worker processes."
    )


def _asked_on_command_line() -> str | None:
    """The -P/--pool (or CELERY_WORKER_POOL) given to `celery worker`, though Celery swapped it."""
    context = click.get_current_context(silent=True)
    if context is None or context.info_name != "worker":
        return None
    source = context.get_parameter_source("pool")
    if source is click.core.ParameterSource.ENVIRONMENT:
        param = next((p for p in context.command.params if p.name == "pool"), None)
        value = param.resolve_envvar_value(context) if param is not None else None
        return str(value) if value else None
    if source is not click.core.ParameterSource.COMMANDLINE:
        return None
    return _option_value(sys.argv, "-P", "--pool")


def _option_value(argv: list[str], short: str, long: str) -> str | None:
    """The value of the last `short VALUE`, `shortVALUE`, `long VALUE` or `long=VALUE` in argv."""
    found = None
    for i, arg in enumerate(argv):
        following = argv[i + 1] if i + 1 < len(argv) else None
        if arg in (short, long):
            found = following
        elif arg.startswith(long + "="):
            found = arg.split("=", 1)[1]
        elif arg.startswith(short) and not arg.startswith("--") and len(arg) > len(short):
            found = arg[len(short) :]
    return found

"""A worker that must stop does so within its grace period, even while a flow will not.

On SIGTERM (scale-in, deploy, `docker compose stop`) Celery stops taking messages and waits
for the steps under way. Flows running their own code are stopped at once and their
executions handed over; should one not stop (blocked in C code), the process hands over
everything it holds and exits when the grace period is over. A worker whose flow could not
be stopped after its step deadline replaces itself the same way: it stops, for its
supervisor (compose, Kubernetes, systemd) to start a fresh one.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

from celery import Celery, signals

from flowrt.clock import utc_now
from flowrt.live import LiveExecution, StopReason
from flowrt.runtime import Runtime

log = logging.getLogger("flowrt.tasks")

EXIT_NOT_STOPPED = 70  # the exit status of a worker whose grace period ran out


def install(app: Celery, grace_s: float) -> None:
    """Stop running flows when a worker of `app` is told to stop; exit after `grace_s`."""

    def on_shutting_down(sender: Any = None, **_: Any) -> None:
        runtimes: dict[str, Runtime] = getattr(app, "flowrt_runtimes", {})
        runtime = runtimes.get(str(sender))
        if runtime is None:
            return
        # This runs in the signal handler: the work goes to threads of its own.
        threading.Thread(
            target=runtime.stop_running, args=(StopReason.SHUTDOWN,), daemon=True
        ).start()
        timer = threading.Timer(grace_s, _exit_after_grace, args=(runtime, grace_s))
        timer.daemon = True
        timer.start()

    signals.worker_shutting_down.connect(on_shutting_down, weak=False)


def replace_worker(live: LiveExecution) -> None:
    """A flow could not be stopped: stop this worker, for its supervisor to start a new one."""
    log.error(
        "the flow of execution %s could not be stopped (blocked outside Python code); this "
        "worker stops so that its supervisor starts a fresh one",
        live.execution_id,
    )
    os.kill(os.getpid(), signal.SIGTERM)


def _exit_after_grace(runtime: Runtime, grace_s: float) -> None:
    log.error(
        "worker %s did not stop within %g s (FLOWRT_SHUTDOWN_GRACE_SECONDS): handing over "
        "its executions and exiting",
        runtime.holder,
        grace_s,
    )
    try:
        runtime.store.release_worker(runtime.holder, utc_now())
    finally:
        os._exit(EXIT_NOT_STOPPED)

"""An in-process Celery worker: the embedded default needs no broker or worker of its own."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import sys

from celery import Celery, signals
from celery.contrib.testing.worker import start_worker
from celery.utils.nodenames import worker_direct
from celery.worker import state

_numbers = itertools.count(1)
WAKE = "flowrt.wake_worker"
# The hash seed the `flowrt` command runs flows under: set iteration order, and so a flow's
# calls over a set, must be the same in every process that replays the flow.
HASH_SEED = "0"
log = logging.getLogger("flowrt")
_warned = False


def pin_hash_seed() -> None:
    """Re-execute this process with PYTHONHASHSEED=HASH_SEED when no seed is set.

    Called first thing by the `flowrt` command, so that a flow it runs replays alike when
    another `flowrt` process (or a worker started with the same seed) restores it.
    """
    if os.environ.get("PYTHONHASHSEED"):
        return
    if sys.orig_argv[len(sys.orig_argv) - len(sys.argv) :] != sys.argv:
        return  # called from inside another program (a test, `python -c`): never replace it
    os.environ["PYTHONHASHSEED"] = HASH_SEED
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, sys.orig_argv)


def _warn_unpinned_hash_seed() -> None:
    # Library use (`flowrt.start` on memory://) runs flows in the caller's process, whose
    # seed flowrt does not choose.
    global _warned
    if _warned or os.environ.get("PYTHONHASHSEED") not in (None, "", "random"):
        return
    _warned = True
    log.warning(
        "PYTHONHASHSEED is not set: a flow run in this process that iterates over a set may "
        "diverge when restored in another process; set PYTHONHASHSEED=%s (the `flowrt` "
        "command does so itself)",
        HASH_SEED,
    )


class EmbeddedWorker:
    """A Celery worker on a thread of this process, running the same step task as any worker."""

    def __init__(self, app: Celery, concurrency: int) -> None:
        _warn_unpinned_hash_seed()
        self.app = app
        self.hostname = f"flowrt-embedded-{os.getpid()}-{next(_numbers)}@{socket.gethostname()}"
        self._stack = contextlib.ExitStack()
        self._worker = self._stack.enter_context(
            start_worker(
                app,
                pool="threads",
                concurrency=max(concurrency, 1),
                perform_ping_check=False,
                loglevel="WARNING",
                shutdown_timeout=30.0,
                hostname=self.hostname,
            )
        )

    def stop(self) -> None:
        """Finish the steps in hand and stop consuming."""
        # The worker loop waits up to 2 s for a message before it looks at the shutdown flag,
        # and waits once more after it has seen it: two messages to its own queue end both.
        state.should_terminate = 0
        for _ in range(2):
            self.app.send_task(WAKE, queue=worker_direct(self.hostname).name)
        self._stack.close()
        # A test worker stops without the signal a real one sends; its heartbeat and reaper
        # threads stop on it, and the executions it held go back to the database.
        signals.worker_shutdown.send(sender=self._worker)

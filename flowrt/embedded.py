"""An in-process Celery worker: the embedded default needs no broker or worker of its own."""

from __future__ import annotations

import contextlib
import itertools
import os
import socket

from celery import Celery, signals
from celery.contrib.testing.worker import start_worker
from celery.utils.nodenames import worker_direct
from celery.worker import state

_numbers = itertools.count(1)
WAKE = "flowrt.wake_worker"


class EmbeddedWorker:
    """A Celery worker on a thread of this process, running the same step task as any worker."""

    def __init__(self, app: Celery, concurrency: int) -> None:
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

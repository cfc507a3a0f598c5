"""flowrt's worker pool: step threads in the worker's process, as many as `-c` or `--autoscale` say.

Celery's thread pool has a fixed size, so `--autoscale` stops the worker at the first burst
(it has no `grow`). This pool keeps a number of threads that the autoscaler (or the
`pool_grow` / `pool_shrink` control commands) may change at any time. A thread shrunk away
finishes the step it runs first: it leaves only between two steps. Live executions are not
pool threads (each runs on a thread of its own), so resizing the pool never touches them.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from celery.concurrency.base import BasePool, apply_target
from celery.concurrency.thread import ApplyResult

# What a thread takes from the job queue when it should look at the pool's size: a thread
# beyond the size leaves, any other goes back to waiting.
_WAKE = object()


@dataclass
class _Job:
    """One step (or any task) handed to the pool, with the future Celery may wait on."""

    target: Callable[..., Any]
    args: tuple[Any, ...] | list[Any]
    kwargs: dict[str, Any]
    callback: Callable[..., Any] | None
    accept_callback: Callable[..., Any] | None
    future: Future[Any] = field(default_factory=Future)


class StepPool(BasePool):
    """Threads that can grow and shrink in number: `celery -A tasks worker -c N | --autoscale`."""

    limit: int | None

    body_can_be_buffer = True
    signal_safe = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._size = max(int(self.limit or 0), 0)
        self._jobs: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._threads: set[threading.Thread] = set()
        self._busy = 0
        self._stopping = False
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)

    # --- what the autoscaler and the control commands call -------------------------------------

    @property
    def num_processes(self) -> int:
        """The size the pool has been given (threads beyond it leave once their step ends)."""
        return self._size

    def grow(self, n: int = 1) -> None:
        """Add `n` threads (fewer when threads shrunk away are still finishing their steps)."""
        with self._lock:
            if self._stopping:
                return
            self._size += n
            self.limit = self._size
            self._start_missing_threads()

    def shrink(self, n: int = 1) -> None:
        """Remove `n` threads: idle ones leave at once, busy ones after their step."""
        with self._lock:
            n = min(n, self._size)
            self._size -= n
            self.limit = self._size
        for _ in range(n):
            self._jobs.put(_WAKE)

    # --- BasePool -------------------------------------------------------------------------------

    def on_start(self) -> None:
        with self._lock:
            self._start_missing_threads()

    def on_apply(
        self,
        target: Callable[..., Any],
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        callback: Callable[..., Any] | None = None,
        accept_callback: Callable[..., Any] | None = None,
        **_: Any,
    ) -> ApplyResult:
        job = _Job(target, args or (), kwargs or {}, callback, accept_callback)
        self._jobs.put(job)
        if self._size == 0 and not self._stopping:
            # Shrunk to nothing (--autoscale=MAX,0) and a step fell due without a message the
            # autoscaler saw (an ETA): take one thread back rather than wait for its next look.
            self.grow(1)
        return ApplyResult(job.future)

    def on_stop(self) -> None:
        """Warm shutdown: drop the steps not begun (their messages go back), finish the others."""
        threads = self._close()
        for thread in threads:
            thread.join()
        super().on_stop()

    def on_terminate(self) -> None:
        """Cold shutdown: drop the steps not begun and wait for nothing."""
        self._close()

    def _get_info(self) -> dict[str, Any]:
        info = super()._get_info()
        with self._lock:
            info.update({"max-concurrency": self._size, "threads": len(self._threads)})
            info["busy"] = self._busy
        return info

    # --- the threads ----------------------------------------------------------------------------

    def _start_missing_threads(self) -> None:
        while len(self._threads) < self._size:
            thread = threading.Thread(
                target=self._serve, name=f"flowrt-step-{next(self._numbers)}", daemon=True
            )
            self._threads.add(thread)
            thread.start()

    def _serve(self) -> None:
        me = threading.current_thread()
        while True:
            job = self._jobs.get()
            if isinstance(job, _Job):
                self._run(job)
            with self._lock:
                if len(self._threads) > self._size:
                    self._threads.discard(me)
                    return

    def _run(self, job: _Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        with self._lock:
            self._busy += 1
        try:
            result = apply_target(
                job.target, job.args, job.kwargs, job.callback, job.accept_callback
            )
        except BaseException as error:  # as Celery's thread pool: the future carries it
            job.future.set_exception(error)
        else:
            job.future.set_result(result)
        finally:
            with self._lock:
                self._busy -= 1

    def _close(self) -> list[threading.Thread]:
        """Set the size to nought, cancel the steps not begun, wake every thread to leave."""
        with self._lock:
            self._stopping = True
            self._size = 0
            threads = list(self._threads)
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if isinstance(job, _Job):
                job.future.cancel()
        for _ in threads:
            self._jobs.put(_WAKE)
        return threads

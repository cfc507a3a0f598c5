"""Isolation: a suspect's step runs alone in its worker process, so a death is attributed to it.

When a worker dies, every execution it held is a suspect: any of them may have killed it. A
suspect's next step runs while no other step runs in the same process; if the worker dies
then, the death was the suspect's own (see `leases.reap`). Normal steps share the process.
"""

from __future__ import annotations

import threading


class Isolation:
    """A shared/exclusive lock over the steps of one process, preferring those that run alone."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._sharing = 0
        self._alone: int | None = None  # the thread whose step runs alone
        self._waiting_alone = 0

    def share(self) -> None:
        """Begin a normal step; waits while a step runs alone or waits to."""
        with self._changed:
            while self._alone is not None or self._waiting_alone:
                self._changed.wait()
            self._sharing += 1

    def leave(self) -> None:
        """End this thread's step, whether it shared the process or ran alone."""
        with self._changed:
            if self._alone == threading.get_ident():
                self._alone = None
            else:
                self._sharing -= 1
            self._changed.notify_all()

    def go_alone(self) -> None:
        """Turn this thread's normal step into one that runs alone; waits for the others."""
        with self._changed:
            self._sharing -= 1
            self._waiting_alone += 1
            self._changed.notify_all()
            while self._alone is not None or self._sharing:
                self._changed.wait()
            self._waiting_alone -= 1
            self._alone = threading.get_ident()

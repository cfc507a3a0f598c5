"""Isolation: a suspect's step runs alone in its worker process, so a death is attributed to it.

When a worker dies, every execution it held is a suspect: any of them may have killed it. A
suspect's next step runs while no other step runs in the same process; if the worker dies
then, the death was the suspect's own (see `leases.reap`). Normal steps share the process.
"""

from __future__ import annotations

import threading
import time


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

    def go_alone(self, timeout_s: float) -> bool:
        """Turn this thread's normal step into one that runs alone, once the others ended.

        New steps wait meanwhile, so short ones drain; if the others have not ended within
        `timeout_s` (a long step runs here), the step stays a normal one and False is
        returned: a suspect must not hold its whole worker up behind a long step.
        """
        deadline = time.monotonic() + timeout_s
        with self._changed:
            self._sharing -= 1
            self._waiting_alone += 1
            try:
                while self._alone is not None or self._sharing:
                    left_s = deadline - time.monotonic()
                    if left_s <= 0:
                        self._sharing += 1
                        return False
                    self._changed.wait(left_s)
                self._alone = threading.get_ident()
                return True
            finally:
                self._waiting_alone -= 1
                self._changed.notify_all()

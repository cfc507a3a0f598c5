"""Celery's autoscaler, told that the reaper's messages are not load and made to look every second.

Celery's autoscaler sizes the pool by the requests the worker holds (`qty`) and shrinks it
only after `AUTOSCALE_KEEPALIVE` seconds without a received task. Beat sends flowrt's reaper
every second, so with beat running (as in production) the pool would never shrink: here the
reaper's messages (and the embedded worker's wake-ups) count neither as held requests nor as
activity. On an event loop (Redis) Celery looks at the pool only when a message arrives and
every keepalive seconds; a step that falls due from a timer (a sleep's ETA) would wait that
long for a thread, so this autoscaler looks every second, as Celery's threaded one does, and
keeps the keepalive for idleness alone.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from celery.worker import autoscale, state

# Tasks that are housekeeping, not load (names as in tasks/steps.py).
NOT_LOAD = frozenset({"flowrt.reap", "flowrt.wake_worker"})

# Seconds between two looks at the pool's size.
LOOK_INTERVAL_S = 1.0


class Autoscaler(autoscale.Autoscaler):
    """Grows flowrt's pool to the steps the worker holds; shrinks it after a keepalive idle."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.idle_s = float(kwargs.get("keepalive", autoscale.AUTOSCALE_KEEPALIVE))
        # The event loop calls `maybe_scale` every `keepalive` seconds: that is how often it looks.
        self.keepalive = min(self.idle_s, LOOK_INTERVAL_S)
        # A pool grown by other means (see StepPool.on_apply) shrinks a keepalive after start.
        self._last_scale_up = monotonic()

    def on_task_received(self, req: Any) -> None:
        if getattr(req, "name", None) not in NOT_LOAD:
            self._last_task_received = monotonic()

    def scale_down(self, n: int) -> Any:
        last_active = self._last_scale_up
        last_received = self._last_task_received
        if last_received is not None and (last_active is None or last_received > last_active):
            last_active = last_received
        if last_active is not None and monotonic() - last_active > self.idle_s:
            return self._shrink(n)
        return None

    @property
    def qty(self) -> int:
        """Requests the worker holds (reserved or running), housekeeping left out."""
        for _ in range(3):
            try:
                held = list(state.reserved_requests)
            except RuntimeError:  # a step ended on another thread while we counted
                continue
            return sum(1 for req in held if getattr(req, "name", None) not in NOT_LOAD)
        return len(state.reserved_requests)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "keepalive": self.idle_s}

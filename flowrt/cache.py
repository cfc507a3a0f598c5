"""The live executions one worker process keeps in memory between steps."""

from __future__ import annotations

import threading
from collections import OrderedDict

from flowrt.live import LiveExecution


class LiveCache:
    """At most `capacity` parked executions, least recently stepped evicted first.

    An execution being stepped is taken out, so no two threads step it at once.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._parked: OrderedDict[str, LiveExecution] = OrderedDict()
        # The executions being stepped, with their live state once the step has one.
        self._busy: dict[str, LiveExecution | None] = {}
        self._lock = threading.Lock()

    def take(self, execution_id: str, version: int) -> tuple[LiveExecution | None, bool]:
        """Claim the execution for a step at `version`.

        Returns `(live, claimed)`: `claimed` is False when another thread of this process is
        stepping it already; `live` is the parked execution if it is at `version`, else None.
        """
        stale = None
        with self._lock:
            if execution_id in self._busy:
                return None, False
            live = self._parked.get(execution_id)
            if live is not None and live.alive and live.version > version:
                return None, False  # the message is older than what this worker committed
            if live is not None:
                del self._parked[execution_id]
                if live.version != version or not live.alive:
                    stale, live = live, None
            self._busy[execution_id] = live
        if stale is not None:
            stale.close()
        return live, True

    def put(self, live: LiveExecution) -> bool:
        """Park `live` after a step; False if it was evicted at once (capacity 0)."""
        evicted = []
        with self._lock:
            self._busy.pop(live.execution_id, None)
            self._parked[live.execution_id] = live
            while len(self._parked) > self.capacity:
                evicted.append(self._parked.popitem(last=False)[1])
        for old in evicted:
            old.close()
        return live not in evicted

    def discard(self, execution_id: str) -> None:
        """Forget the execution after a failed step, unloading it if it was parked."""
        with self._lock:
            self._busy.pop(execution_id, None)
            live = self._parked.pop(execution_id, None)
        if live is not None:
            live.close()

    def forget(self, live: LiveExecution) -> bool:
        """Unload `live` if it is still parked here; True if it was."""
        with self._lock:
            parked = self._parked.get(live.execution_id) is live
            if parked:
                del self._parked[live.execution_id]
        if parked:
            live.close()
        return parked

    def parked(self) -> list[LiveExecution]:
        """The executions parked here now."""
        with self._lock:
            return list(self._parked.values())

    def busy(self) -> set[str]:
        """The ids of the executions being stepped here now."""
        with self._lock:
            return set(self._busy)

    def attach(self, live: LiveExecution) -> None:
        """Record the live state a step loaded for the execution it steps."""
        with self._lock:
            if live.execution_id in self._busy:
                self._busy[live.execution_id] = live

    def stepping(self) -> list[LiveExecution]:
        """The live executions being stepped here now (their flow may be running)."""
        with self._lock:
            return [live for live in self._busy.values() if live is not None]

    def release(self, execution_id: str) -> None:
        """End a step that parks nothing (the execution ended, waits long, or lost its fence)."""
        with self._lock:
            self._busy.pop(execution_id, None)

    def clear(self) -> None:
        """Unload every parked execution."""
        with self._lock:
            parked = list(self._parked.values())
            self._parked.clear()
        for live in parked:
            live.close()

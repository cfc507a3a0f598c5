"""The statuses of an execution."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Where an execution stands; the names are Cloudomation's."""

    RUNNING = "RUNNING"
    WAITING = "WAITING"
    PAUSED = "PAUSED"
    ENDED_SUCCESS = "ENDED_SUCCESS"
    ENDED_ERROR = "ENDED_ERROR"
    ENDED_CANCELLED = "ENDED_CANCELLED"
    # Not one flowrt writes: a stored value it does not know (an altered row) reads as this,
    # so that one bad row cannot break a listing; nothing runs, restores or reaps it.
    UNKNOWN = "UNKNOWN"

    @property
    def ended(self) -> bool:
        """True once the execution can make no more progress by itself."""
        return self.name.startswith("ENDED_")


RESTORABLE = frozenset({Status.RUNNING, Status.WAITING, Status.PAUSED, Status.ENDED_ERROR})

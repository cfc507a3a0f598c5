"""Step messages: what one carries, and the dispatcher protocol the Celery edge implements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class StepTicket:
    """A step message: ids only (`execution_id`, `version`, `head_id`), plus labels for Flower.

    A step runs only if the execution is still at `version` with head `head_id` (None: any
    head), so a message whose state was never stored, or was replaced, finds nothing to do.
    """

    execution_id: str
    version: int
    flow_name: str
    seq: int | None
    call: str
    head_id: str | None = None

    @property
    def label(self) -> str:
        """How Flower names the step: flow and call, never the savepoint number.

        Flower's metrics keep one series per task name: a name that held the number would
        add one per savepoint. The number travels in the step's shown arguments instead.
        """
        return f"{self.flow_name} {self.call}"


class Dispatcher(Protocol):
    """Sends step messages; the Celery edge implements it."""

    def enqueue_step(
        self, ticket: StepTicket, *, worker: str | None = None, eta: datetime | None = None
    ) -> None:
        """Enqueue `ticket` on `worker`'s own queue, or the shared one; `eta` delays it."""

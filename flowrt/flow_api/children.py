"""Child executions as their parent sees them, and when waiting for them returns."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowrt.live import LiveExecution


class ReturnWhen(StrEnum):
    """When `wait_for` returns: `system.return_when.ALL_SUCCEEDED` (the default) and so on."""

    ALL_SUCCEEDED = "ALL_SUCCEEDED"  # every child ENDED_SUCCESS; a failed one raises
    ALL_ENDED = "ALL_ENDED"  # every child ended, however
    FIRST_ENDED = "FIRST_ENDED"  # at least one child ended


@dataclass(frozen=True)
class ChildRef:
    """What the journal keeps of a child execution: its id and flow."""

    id: str
    flow_name: str


class ChildExecution:
    """A child execution started by `this.flow()`, as its parent sees it."""

    def __init__(self, live: LiveExecution, ref: ChildRef) -> None:
        self._live, self.id, self.flow_name = live, ref.id, ref.flow_name

    def __repr__(self) -> str:
        return f"<child execution {self.id} of {self.flow_name!r}>"

    def get(self, field: str) -> Any:
        """Read the child's `'output_value'`, `'status'`, `'message'`, `'input_value'`, ...

        Durability: creates a savepoint; replay returns the value read the first time.
        """
        return self._live.call("child.get", (self.id, field), {})

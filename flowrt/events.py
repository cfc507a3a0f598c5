"""What a live execution's flow does, as the step that runs it sees it: the events of a flow."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from flowrt.calls import Call, Outcome
from flowrt.errors import DeterminismError
from flowrt.reads import Read


@dataclass(frozen=True)
class ReplayEntry:
    """A journaled call the replaying flow must make again; `outcome` is None for the head.

    `reads` are the time, random and uuid values the flow read just before the call.
    """

    seq: int
    name: str
    line: int
    digest: bytes
    outcome: Outcome | None
    reads: list[Read] = field(default_factory=list)


@dataclass(frozen=True)
class Parked:
    """The flow waits at `call`; `recorded` is True when its savepoint is already stored."""

    call: Call
    recorded: bool


@dataclass(frozen=True)
class Returned:
    """The handler returned `value`."""

    value: Any


@dataclass(frozen=True)
class Raised:
    """The handler raised `error`; `trace` shows only the flow's own frames."""

    error: BaseException
    trace: str
    line: int | None


@dataclass(frozen=True)
class Diverged:
    """Replay found a call that differs from its journal row."""

    error: DeterminismError


@dataclass(frozen=True)
class Unwound:
    """The thread ended because it was closed."""


class StopReason(StrEnum):
    """Why flowrt stopped a flow that was running its own code."""

    DEADLINE = "deadline"  # it ran longer than max_step_s without a Flow-API call
    TAKEN = "taken"  # its execution was cancelled, paused, restored or taken over meanwhile
    SHUTDOWN = "shutdown"  # its worker stops


@dataclass(frozen=True)
class Stopped:
    """flowrt stopped the running flow for `reason` at `line` (of the flow's own code).

    `stuck` is True when its thread did not end within the grace period (blocked outside
    Python code, or swallowing the stop): the thread is lost to its process.
    """

    reason: StopReason
    line: int | None
    stuck: bool


Event = Parked | Returned | Raised | Diverged | Unwound | Stopped


@dataclass
class FlowState:
    """What the flow side knows of its execution; rebuilt by replay like any variable."""

    execution_id: str
    flow_name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    message: str | None = None
    # The setting locks its calls took and did not give back, as their answers say: a
    # release run again after a crash can tell its own earlier release from a careless one.
    held_locks: set[str] = field(default_factory=set)

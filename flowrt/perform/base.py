"""The registry of performers, and the results a performer returns to the step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flowrt.blobs import Signer
from flowrt.calls import Call, Outcome
from flowrt.connectors import Connectors
from flowrt.errors import FlowrtError, InvalidCallError
from flowrt.live import LiveExecution
from flowrt.options import Options
from flowrt.status import Status
from flowrt.storage.base import ExecutionRecord, LogRecord, SavepointRecord, Store
from flowrt.values import check_json

# start_child(parent, flow, inputs, name=None, run=True) and run_child(child) of the runtime.
ChildStarter = Callable[..., ExecutionRecord]
ChildRunner = Callable[[ExecutionRecord], ExecutionRecord]


def _nobody_to_wake(name: str) -> None:
    """The default of `StepContext.lock_freed`: wakes nobody (the reaper still does)."""


@dataclass(frozen=True)
class Answer:
    """The call is done: hand `outcome` to the flow, and write `changes` and `logs` with it."""

    outcome: Outcome
    changes: dict[str, Any] = field(default_factory=dict)
    logs: tuple[LogRecord, ...] = ()


@dataclass(frozen=True)
class Wait:
    """The call cannot complete yet; the execution waits, holding no worker slot.

    It waits until `until`, or (None) until something wakes it: one of `children` ending, or
    what `waits_on` names ("message:ID" answered, "lock:NAME" free). Woken, the step performs
    the same call again, which answers or waits once more.
    """

    until: datetime | None
    children: tuple[str, ...] = ()
    waits_on: str | None = None


@dataclass(frozen=True)
class End:
    """The call ends the execution with `status`."""

    status: Status
    message: str | None


@dataclass(frozen=True)
class Restore:
    """The call restores the execution to `target`."""

    target: SavepointRecord


Result = Answer | Wait | End | Restore


@dataclass
class StepContext:
    """What a performer may use: the live execution, the store, connectors and the clock.

    `lock_freed(name)` wakes the executions waiting for setting `name`'s lock.
    """

    live: LiveExecution
    store: Store
    connectors: Connectors
    options: Options
    now: datetime
    start_child: ChildStarter
    run_child: ChildRunner | None = None
    signer: Signer | None = None  # signs the flows a flow registers (system.flow().save)
    lock_freed: Callable[[str], None] = _nobody_to_wake

    @property
    def idempotency_key(self) -> str:
        """Stable across re-runs of this call, new for each restore of its savepoint.

        Execution id and savepoint id, plus how often that savepoint was restored once it
        was: a step run again after a crash sends the same key, a restore is a new attempt.
        """
        head = self.live.head
        if head is None:
            return f"{self.live.execution_id}:start"
        attempt = f":{head.restored}" if head.restored else ""
        return f"{self.live.execution_id}:{head.id}{attempt}"


Performer = Callable[..., Result]
PERFORMERS: dict[str, Performer] = {}
# The calls that change something outside the execution (an outside system, a child, a
# setting or file): a step confirms it still holds the execution before it performs one.
REACHING_OUT: set[str] = set()


def performer(name: str, reaches_out: bool = False) -> Callable[[Performer], Performer]:
    """Register the function performing the Flow-API call `name`.

    `reaches_out`: the call changes something outside the execution's own state, which its
    fenced commit cannot take back.
    """

    def register(function: Performer) -> Performer:
        PERFORMERS[name] = function
        if reaches_out:
            REACHING_OUT.add(name)
        return function

    return register


def perform(context: StepContext, call: Call) -> Result:
    """Perform `call`; a flowrt error becomes the call's error, raised at the flow's line."""
    function = PERFORMERS.get(call.name)
    if function is None:
        return Answer(Outcome(error=InvalidCallError(f"unknown Flow-API call {call.name!r}")))
    try:
        return function(context, *call.args, **call.kwargs)
    except FlowrtError as error:
        return Answer(Outcome(error=error))
    except TypeError as error:
        return Answer(Outcome(error=InvalidCallError(f"{call.describe()}: {error}")))


def done(value: Any = None, **changes: Any) -> Answer:
    return Answer(Outcome(value=value), changes)


def json_value(call: str, what: str, value: Any) -> Any:
    # flow_api checked what the flow hands in; this also guards what flowrt hands back.
    return check_json(call, what, value)


def existence_calls(call: str, kind: str) -> None:
    """Register `<call>.exists` and `<call>.delete` for the named records of `kind` (a
    stored connector is a `connection` to the flow, a `connector` in the store)."""

    @performer(f"{call}.exists")
    def _exists(context: StepContext, name: str) -> Result:
        return done(context.store.get_named(kind, name) is not None)

    @performer(f"{call}.delete", reaches_out=True)
    def _delete(context: StepContext, name: str) -> Result:
        context.store.delete_named(kind, name)
        return done()

"""A live execution: the flow's handler on a thread of its own, parked at its pending Flow-API call.

The handler runs on a dedicated thread because a Celery thread pool steps an execution from
any of its threads, and a suspended frame (thread or greenlet) can only resume where it began.
Between steps the thread waits in `_answers.get()`; a step hands it the outcome of its pending
call and waits until it parks at the next call, returns or raises.
"""

from __future__ import annotations

import queue
import threading
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flowrt.calls import Call, Outcome, capture
from flowrt.errors import DeterminismError, DivergedSignal, FlowSignal, UnloadSignal
from flowrt.reads import Read, ReadJournal, importer, journaled_imports
from flowrt.script import FlowScript, wants_inputs
from flowrt.status import Status
from flowrt.storage.base import SavepointRecord


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


Event = Parked | Returned | Raised | Diverged | Unwound


@dataclass
class FlowState:
    """What the flow side knows of its execution; rebuilt by replay like any variable."""

    execution_id: str
    flow_name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    message: str | None = None


class LiveExecution:
    """One execution's handler, running or parked, with the journal it replays first."""

    def __init__(self, script: FlowScript, state: FlowState, journal: list[ReplayEntry]) -> None:
        self.script = script
        self.state = state
        self.version = -1
        self.head: SavepointRecord | None = None
        self.pending: Call | None = None
        self.status = Status.RUNNING
        self.wake_at: datetime | None = None
        # Whether the stored execution names this process's worker as its holder; a live
        # execution whose next step went to the shared queue must claim it again first.
        self.owned = True
        self.lease_deadline = 0.0  # time.monotonic() until which its stored lease holds
        # time.monotonic() by which the step this worker sent itself should have begun; a
        # step still missing then was lost (say, with a broker restart): stop renewing.
        self.step_expected_by = 0.0
        self.idle_since = 0.0  # time.monotonic() when it was parked waiting
        self.parent_id: str | None = None
        self._journal = journal
        self._position = 0
        self.reads = ReadJournal([entry.reads for entry in journal], script.filename)
        self._answers: queue.SimpleQueue[Outcome | type[FlowSignal]] = queue.SimpleQueue()
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._closing: type[FlowSignal] | None = None
        # Whether the savepoint this live state stands at is stored (see Runtime._advance).
        self._committed = threading.Event()
        self._committed.set()
        self._commit_ok = True
        self._thread = threading.Thread(
            target=self._run, name=f"flow-{state.execution_id[:8]}", daemon=True
        )

    @property
    def execution_id(self) -> str:
        """The id of the execution this handler belongs to."""
        return self.state.execution_id

    def begin_commit(self) -> None:
        """Mark the savepoint this execution now stands at as not stored yet."""
        self._commit_ok = False
        self._committed.clear()

    def end_commit(self, stored: bool) -> None:
        """Record whether that savepoint was stored, and wake a step waiting for it."""
        self._commit_ok = stored
        self._committed.set()

    def wait_committed(self) -> bool:
        """Wait until the savepoint this execution stands at is settled; True if it is stored."""
        self._committed.wait()
        return self._commit_ok

    @property
    def alive(self) -> bool:
        """True while the handler's thread runs (parked or working)."""
        return self._thread.is_alive()

    def start(self) -> Event:
        """Run the handler from the top, through its journal, to its first new or head call."""
        self._thread.start()
        return self._events.get()

    def resume(self, outcome: Outcome) -> Event:
        """Answer the pending call with `outcome` and run the flow to its next event."""
        if not self._thread.is_alive():
            raise RuntimeError(f"execution {self.execution_id} has no running handler to resume")
        self._answers.put(outcome)
        return self._events.get()

    def close(self, signal: type[FlowSignal] = UnloadSignal, timeout_s: float = 5.0) -> None:
        """Unwind the parked handler with `signal` and let its thread end."""
        if self._thread.is_alive():
            self._closing = signal
            self._answers.put(signal)
            self._thread.join(timeout_s)

    # --- the flow's side: runs on the flow thread ----------------------------------------

    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], **extra: Any) -> Any:
        """Make the Flow-API call `name`: from the journal when replaying, else park for a step."""
        if self._closing is not None:
            raise self._closing()
        self.reads.before_call()
        replaying = self._position < len(self._journal)
        call = capture(
            name, args, kwargs, self.script.filename, with_variables=not replaying, **extra
        )
        if replaying:
            entry = self._journal[self._position]
            self._position += 1
            if entry.name != call.name or entry.digest != call.digest:
                raise DivergedSignal(
                    DeterminismError(
                        entry.seq,
                        call.line,
                        f"{entry.name}(…) at line {entry.line}",
                        f"calls {call.describe()} at line {call.line}",
                    )
                )
            if entry.outcome is not None:
                return entry.outcome.unwrap()
            self._journal = []  # the head: from here on the flow runs live
            return self._park(call, recorded=True)
        return self._park(call, recorded=False)

    def _park(self, call: Call, recorded: bool) -> Any:
        self._events.put(Parked(call, recorded))
        answer = self._answers.get()
        if isinstance(answer, type):
            raise answer()
        return answer.unwrap()

    def _run(self) -> None:
        from flowrt.flow_api import Execution, System

        try:
            handler = self.script.load(importer(journaled_imports(self.reads)))
            system, this = System(self), Execution(self)
            if wants_inputs(handler):
                value = handler(system, this, dict(self.state.inputs))
            else:
                value = handler(system, this)
        except DivergedSignal as signal:
            self._events.put(Diverged(signal.error))
        except FlowSignal:
            self._events.put(Unwound())
        except BaseException as error:  # the flow's own failure ends it ENDED_ERROR
            if self._closing is not None:
                self._events.put(Unwound())
            else:
                self._events.put(Raised(error, *self._trace(error)))
        else:
            if self._closing is not None:
                self._events.put(Unwound())
            elif self._position < len(self._journal):
                head = self._journal[-1]
                self._events.put(
                    Diverged(
                        DeterminismError(
                            head.seq,
                            head.line,
                            f"{head.name}(…) at line {head.line}",
                            "returns from its handler",
                        )
                    )
                )
            else:
                self._events.put(Returned(value))

    def _trace(self, error: BaseException) -> tuple[str, int | None]:
        frames = [
            f
            for f in traceback.extract_tb(error.__traceback__)
            if f.filename == self.script.filename
        ]
        lines = ["Traceback (flow frames only):", *traceback.format_list(frames)]
        lines += traceback.format_exception_only(type(error), error)
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines), (
            frames[-1].lineno if frames else None
        )

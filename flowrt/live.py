"""A live execution: the flow's handler on a thread of its own, parked at its pending Flow-API call.

The handler runs on a dedicated thread because a Celery thread pool steps an execution from
any of its threads, and a suspended frame (thread or greenlet) can only resume where it began.
Between steps the thread waits in `_answers.get()`; a step hands it the outcome of its pending
call and waits until it parks at the next call, returns or raises.
"""

from __future__ import annotations

import copy
import ctypes
import logging
import queue
import sys
import threading
import time
import traceback
from datetime import datetime
from typing import Any, NoReturn

from flowrt.calls import Call, Outcome, capture
from flowrt.connectors.masking import mask_text, secrets_of
from flowrt.errors import (
    DeterminismError,
    DivergedSignal,
    FlowSignal,
    ForeignThreadError,
    StopSignal,
    UnloadSignal,
)
from flowrt.events import (
    Diverged,
    Event,
    FlowState,
    Parked,
    Raised,
    ReplayEntry,
    Returned,
    Stopped,
    StopReason,
    Unwound,
)
from flowrt.reads import ReadJournal, importer, journaled_imports
from flowrt.script import FlowScript, wants_inputs
from flowrt.status import Status
from flowrt.storage.base import SavepointRecord

__all__ = [
    # re-exported: the events of a flow, as steps and the journal import them from here
    "Diverged",
    "Event",
    "FlowState",
    "LiveExecution",
    "Parked",
    "Raised",
    "ReplayEntry",
    "Returned",
    "StopReason",
    "Stopped",
    "Unwound",
]

log = logging.getLogger("flowrt")
_UNWIND_WAIT_S = 0.005  # how long close() waits for a flow to unwind before it helps from outside
_ORPHAN_UNWIND_S = 30.0  # how long an unloaded flow that runs on is unwound from outside
_REPLAY_CHECK_S = 1.0  # how often a waiting step looks whether replay has moved the deadline
_WAKE = object()  # put among the events by stop(), to wake a step that waits for one


class LiveExecution:
    """One execution's handler, running or parked, with the journal it replays first."""

    def __init__(
        self,
        script: FlowScript,
        state: FlowState,
        journal: list[ReplayEntry],
        *,
        max_step_s: float = float("inf"),
        stop_grace_s: float = 5.0,
    ) -> None:
        self.script = script
        # How long the flow may run its own code between two Flow-API calls, and how long
        # a stopped flow's thread has to end before it counts as stuck.
        self.max_step_s, self.stop_grace_s = max_step_s, stop_grace_s
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
        # Credentials the flow gave its calls (inline connections): masked in what is shown.
        self.secrets: list[str] = []
        self._journal = journal
        self._position = 0
        self.reads = ReadJournal(
            [entry.reads for entry in journal], script.filename, diverge=self._diverge
        )
        self._diverged: DeterminismError | None = None  # latched at the first divergence
        self._answers: queue.SimpleQueue[Outcome | type[FlowSignal]] = queue.SimpleQueue()
        self._events: queue.SimpleQueue[Event | object] = queue.SimpleQueue()
        self._closing: type[FlowSignal] | None = None
        self._running = False  # a step waits while the flow runs its own code
        self.runs = 0  # times a step has set the flow running (start or resume)
        # When the flow's current stretch of its own code began: at start or resume, and
        # at each call replay answers (time.monotonic(), written by the flow's thread).
        self._stretch_began = 0.0
        self._stop: StopReason | None = None
        self._stop_line: int | None = None
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

    @property
    def running(self) -> bool:
        """True while the flow runs its own code and a step waits for its next event."""
        return self._running

    def start(self) -> Event:
        """Run the handler from the top, through its journal, to its first new or head call."""
        self._running, self.runs = True, self.runs + 1
        self._stretch_began = time.monotonic()
        self._thread.start()
        return self._next_event()

    def resume(self, outcome: Outcome) -> Event:
        """Answer the pending call with `outcome` and run the flow to its next event."""
        if not self._thread.is_alive():
            raise RuntimeError(f"execution {self.execution_id} has no running handler to resume")
        self._running, self.runs = True, self.runs + 1
        self._stretch_began = time.monotonic()
        self._answers.put(outcome)
        return self._next_event()

    def stop(self, reason: StopReason) -> None:
        """Stop the flow's own code (from any thread): the step waiting for it gets `Stopped`.

        A flow that runs Python code is interrupted at once by a `StopSignal` raised in its
        thread, again and again until it ends; one blocked in C code ends when that code
        returns, or counts as stuck after `stop_grace_s`.
        """
        if self._stop is not None:
            return
        self._stop_line = self._current_line()
        self._stop, self._closing = reason, StopSignal
        if self._running:
            self._raise_in_flow()
            self._events.put(_WAKE)

    def close(self, signal: type[FlowSignal] = UnloadSignal, timeout_s: float = 5.0) -> None:
        """Unwind the parked handler with `signal` and let its thread end."""
        if self._thread.is_alive():
            self._closing = signal
            self._answers.put(signal)
            # A stopped flow's thread has ended by now, or is stuck: do not wait for it.
            self._thread.join(min(timeout_s, _UNWIND_WAIT_S) if self._stop is None else 0)
        if self._thread.is_alive() and self._stop is None:
            # Something swallowed the signal (a library's `except BaseException`) and the
            # flow runs on: raise it into the thread again, from outside, until it ends.
            threading.Thread(
                target=self._unwind_orphan, args=(signal,), name="flowrt-unwind", daemon=True
            ).start()

    def _unwind_orphan(self, signal: type[FlowSignal]) -> None:
        give_up = time.monotonic() + _ORPHAN_UNWIND_S
        while self._thread.is_alive() and time.monotonic() < give_up:
            if self._current_line() is not None:  # only into the flow's code, not flowrt's
                self._raise_in_flow(signal)
            self._thread.join(0.005)  # often: the flow may swallow most of them
        if self._thread.is_alive():
            log.warning(
                "the flow thread of execution %s still runs after it was unloaded "
                "(blocked outside Python code, or swallowing every signal)",
                self.execution_id,
            )

    def _next_event(self) -> Event:
        # Wait for the flow's next event, but stop it once one stretch of its own code, from
        # a call (replayed or live) to the next, runs longer than the step deadline.
        try:
            while self._stop is None:
                left_s = self._stretch_began + self.max_step_s - time.monotonic()
                if left_s <= 0:
                    self.stop(StopReason.DEADLINE)
                    break
                try:
                    event = self._events.get(timeout=min(left_s, _REPLAY_CHECK_S))
                except queue.Empty:
                    continue
                if event is not _WAKE:
                    if self._stop is None:
                        return event  # type: ignore[return-value]
                    # Stopped as it parked or ended: its own code no longer runs.
                    return Stopped(self._stop, self._stop_line, stuck=False)
            return self._stopped()
        finally:
            self._running = False

    def _stopped(self) -> Stopped:
        # Wait for the stopped flow's thread to end, raising the stop into it again while it
        # runs Python code that swallows it, for at most stop_grace_s.
        assert self._stop is not None
        give_up = time.monotonic() + self.stop_grace_s
        while self._thread.is_alive() and time.monotonic() < give_up:
            try:
                if self._events.get(timeout=0.2) is not _WAKE:
                    # It ended, or parked just before the stop (closed next).
                    return Stopped(self._stop, self._stop_line, stuck=False)
            except queue.Empty:
                self._raise_in_flow()
        stuck = self._thread.is_alive() and self._events.empty()
        return Stopped(self._stop, self._stop_line, stuck)

    def _raise_in_flow(self, signal: type[FlowSignal] = StopSignal) -> None:
        ident = self._thread.ident
        if ident is not None and self._thread.is_alive():
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(ident), ctypes.py_object(signal)
            )

    def _current_line(self) -> int | None:
        """The line of the flow's own code its thread runs now (None if it is elsewhere)."""
        frame = sys._current_frames().get(self._thread.ident or 0)
        while frame is not None:
            if frame.f_code.co_filename == self.script.filename:
                return frame.f_lineno
            frame = frame.f_back
        return None

    # --- the flow's side: runs on the flow thread ----------------------------------------

    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], **extra: Any) -> Any:
        """Make the Flow-API call `name`: from the journal when replaying, else park for a step.

        Once replay has diverged, or the thread is being unwound, every call raises again
        at once: nothing the flow catches lets a call through, and none is performed.
        """
        if threading.get_ident() != self._thread.ident:
            raise ForeignThreadError(name, threading.current_thread().name)
        if self._closing is not None:
            raise self._closing()
        if self._diverged is not None:
            raise DivergedSignal(self._diverged)
        self.reads.before_call()
        replaying = self._position < len(self._journal)
        call = capture(
            name,
            args,
            kwargs,
            self.script.filename,
            with_variables=not replaying,
            known_secrets=self.secrets,
            **extra,
        )
        if replaying:
            entry = self._journal[self._position]
            self._position += 1
            if entry.name != call.name or entry.digest != call.digest:
                recorded = f"{entry.name}(…) at line {entry.line}"
                found = f"calls {call.describe()} at line {call.line}"
                self._diverge(DeterminismError(entry.seq, call.line, recorded, found))
            if entry.outcome is not None:
                # A replayed call ends a stretch of the flow's own code as a live one does.
                self._stretch_began = time.monotonic()
                return entry.outcome.unwrap()
            self._journal = []  # the head: from here on the flow runs live
            return self._park(call, recorded=True)
        return self._park(call, recorded=False)

    def learn_secrets(self, value: Any) -> None:
        """Mask from now on the credentials `value` holds (what a call answered: a stored
        connector's settings), in the flow's log lines, errors and messages as in savepoints."""
        learned = set(secrets_of(value)) - set(self.secrets) if isinstance(value, dict) else ()
        if learned:
            self.secrets[:] = sorted({*self.secrets, *learned}, key=len, reverse=True)

    def masked(self, text: str | None) -> str | None:
        """`text` with the credentials this execution knows of masked."""
        return text if text is None or not self.secrets else mask_text(text, self.secrets)

    def _diverge(self, error: DeterminismError) -> NoReturn:
        # Latched: the execution ends with this error whatever the flow does next.
        if self._diverged is None:
            self._diverged = error
        raise DivergedSignal(self._diverged)

    def _park(self, call: Call, recorded: bool) -> Any:
        self._events.put(Parked(call, recorded))
        answer = self._answers.get()
        if isinstance(answer, type):
            raise answer()
        return answer.unwrap()

    def _run(self) -> None:
        from flowrt.flow_api import Execution, System

        self.reads.owner = threading.get_ident()
        try:
            handler = self.script.load(importer(journaled_imports(self.reads)))
            system, this = System(self), Execution(self)
            if wants_inputs(handler):
                # Its own copy, nested values too: what it changes is not the input_value.
                value = handler(system, this, copy.deepcopy(self.state.inputs))
            else:
                value = handler(system, this)
        except FlowSignal:
            self._events.put(self._ended(Unwound()))
        except BaseException as error:  # the flow's own failure ends it ENDED_ERROR
            self._events.put(self._ended(Raised(error, *self._trace(error))))
        else:
            self._events.put(self._ended(Returned(value)))

    def _ended(self, event: Unwound | Raised | Returned) -> Event:
        """What the step learns of a handler that ended with `event`."""
        if self._diverged is not None:  # however the flow carried on after diverging
            return Diverged(self._diverged)
        if self._closing is not None:
            return Unwound()
        if isinstance(event, Returned) and self._position < len(self._journal):
            head = self._journal[-1]
            recorded = f"{head.name}(…) at line {head.line}"
            found = "returns from its handler"
            return Diverged(DeterminismError(head.seq, head.line, recorded, found))
        return event

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

"""The runtime: starts, steps, restores and archives executions over a store and a dispatcher.

A step takes an execution that is parked at its pending Flow-API call (from this process's
live cache, or rebuilt by replaying its journal), performs that call, runs the flow to its
next call, stores the savepoint there in one fenced write, and enqueues the next step.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from flowrt.blobs import Signer
from flowrt.cache import LiveCache
from flowrt.calls import Outcome
from flowrt.connectors import Connectors
from flowrt.dispatch import Dispatcher, StepTicket
from flowrt.errors import (
    AnswerTooLargeError,
    EndSignal,
    FlowrtError,
    InvalidCallError,
    SavepointNotFoundError,
    SerializationError,
)
from flowrt.ids import new_id
from flowrt.live import (
    Diverged,
    Event,
    FlowState,
    LiveExecution,
    Parked,
    Raised,
    ReplayEntry,
    Returned,
)
from flowrt.options import Options
from flowrt.performers import Answer, End, Restore, StepContext, Wait, perform
from flowrt.script import FlowScript
from flowrt.status import RESTORABLE, Status
from flowrt.storage.base import ExecutionRecord, LogRecord, SavepointRecord, StepCommit, Store

log = logging.getLogger("flowrt")


def _now() -> datetime:
    return datetime.now(UTC)


class Runtime:
    """flowrt's engine for one process: a client, a worker, or both (embedded)."""

    def __init__(
        self, store: Store, options: Options, dispatcher: Dispatcher, worker: str | None = None
    ) -> None:
        self.store, self.options, self.dispatcher, self.worker = store, options, dispatcher, worker
        self.signer = Signer(options.secret)
        self.live = LiveCache(options.live_max)
        self.connectors = Connectors(store)
        self._scripts: dict[tuple[str, str], FlowScript] = {}
        self.stats = {"steps": 0, "loads": 0, "replayed_calls": 0}

    def close(self) -> None:
        """Unload live executions and close connectors."""
        self.live.clear()
        self.connectors.close()

    # --- operations a client asks for ---------------------------------------------------------

    def start(
        self, flow_name: str, source: str, inputs: dict[str, Any] | None = None
    ) -> ExecutionRecord:
        """Check the script, store a new execution and enqueue its first step."""
        self._script(flow_name, source)
        if not isinstance(inputs or {}, dict):
            raise SerializationError("start", f"inputs must be a dict, not {type(inputs).__name__}")
        try:
            inputs = json.loads(json.dumps(inputs or {}))
        except (TypeError, ValueError) as error:
            raise SerializationError(
                "start", f"inputs must be JSON-serialisable: {error}"
            ) from None
        record = self.store.create_execution(flow_name, source, inputs)
        self.dispatcher.enqueue_step(StepTicket(record.id, 0, flow_name, 0, "start"))
        return record

    def restore(self, execution_id: str, ref: str, by: str = "id") -> ExecutionRecord:
        """Restore an execution to its savepoint `ref` (by `'id'` or `'name'`) and run it."""
        current = self.store.get_execution(execution_id)
        if by == "name":
            target = self.store.find_named(current.head_id, ref) if current.head_id else None
            if target is None:
                raise SavepointNotFoundError(execution_id, ref, "name")
            ref = target.id
        elif by != "id":
            raise InvalidCallError(f"restore by {by!r}: by must be 'id' or 'name'")
        record = self.store.restore(execution_id, ref, RESTORABLE)
        target = self.store.get_savepoint(ref)
        assert target is not None, "store.restore refuses a savepoint it cannot find"
        self._enqueue_restored(record.id, record.version, record.flow_name, target)
        return record

    def archive(self, execution_id: str) -> ExecutionRecord:
        """Delete an ended execution's savepoints; status, outputs and logs stay."""
        return self.store.archive(execution_id)

    # --- a step, run by a worker ---------------------------------------------------------------

    def step(self, execution_id: str, version: int, head_id: str | None = None) -> None:
        """Advance the execution by one Flow-API call if it is still at `version` and `head_id`."""
        live, claimed = self.live.take(execution_id, version)
        if not claimed:
            return
        self.stats["steps"] += 1
        try:
            if live is not None and not live.wait_committed():
                live.close()  # its savepoint was never stored: the database decides below
                live = None
            if live is None:
                live = self._load(execution_id, version, head_id)
                if live is None:
                    self.live.release(execution_id)
                    return
            self._perform(live)
        except BaseException:
            self.live.discard(execution_id)
            if live is not None:
                live.close()
            raise

    def fail(self, execution_id: str, version: int, trace: str) -> None:
        """End an execution ENDED_ERROR after a fault inside flowrt, if still at `version`."""
        message = "internal error in flowrt while stepping this execution; restore it to retry"
        self._end_error(version, execution_id, message, f"{message}\n{trace}", None)

    def _load(self, execution_id: str, version: int, head_id: str | None) -> LiveExecution | None:
        record = self.store.get_execution(execution_id)
        if record.version != version or record.status not in (Status.RUNNING, Status.WAITING):
            return None
        if head_id is not None and record.head_id != head_id:
            return None
        state = FlowState(record.id, record.flow_name, dict(record.inputs), {}, None)
        try:
            journal, head = self._journal(record)
            live = LiveExecution(self._script(record.flow_name, record.source), state, journal)
        except FlowrtError as error:
            self._end_error(record.version, record.id, str(error), None, None)
            return None
        live.version, live.head = record.version, head
        self.stats["loads"] += 1
        self.stats["replayed_calls"] += max(len(journal) - 1, 0)
        live.status, live.wake_at = record.status, record.wake_at
        event = live.start()
        if isinstance(event, Parked) and event.recorded:
            live.pending = event.call
            changes = self._restored_outputs(live, record)
            if changes and not self._commit(live, StepCommit(record.id, live.version, changes)):
                live.close()
                return None
            return live
        self._settle(live, event, None, {}, ())
        return None

    def _journal(self, record: ExecutionRecord) -> tuple[list[ReplayEntry], SavepointRecord | None]:
        if record.head_id is None:
            return [], None
        timeline = self.store.get_timeline(record.head_id)
        entries = []
        for row, after in zip(timeline, [*timeline[1:], None], strict=True):
            outcome = None
            if after is not None:
                what = f"savepoint #{after.seq} ({after.id}) of execution {record.id}"
                outcome = _outcome(self.signer.loads(after.answer or b"", what))
            where = f"reads of savepoint #{row.seq} ({row.id}) of execution {record.id}"
            reads = self.signer.loads(row.reads, where) if row.reads else []
            entries.append(ReplayEntry(row.seq, row.call, row.line, row.digest, outcome, reads))
        return entries, timeline[-1]

    def _restored_outputs(self, live: LiveExecution, record: ExecutionRecord) -> dict[str, Any]:
        # Outputs are part of the execution's state: after a restore, replay rebuilt the ones
        # that held at the restored savepoint, and the stored ones follow.
        changes: dict[str, Any] = {}
        if live.state.outputs != record.outputs:
            changes["outputs"] = live.state.outputs
        if live.state.message != record.message:
            changes["message"] = live.state.message
        return changes

    def _perform(self, live: LiveExecution) -> None:
        assert live.pending is not None
        context = StepContext(live, self.store, self.connectors, self.options, _now())
        result = perform(context, live.pending)
        if isinstance(result, Answer):
            blob, outcome = self._sign(live, result.outcome)
            self._settle(live, live.resume(outcome), blob, result.changes, result.logs)
        elif isinstance(result, Wait):
            self._wait(live, result.until)
        elif isinstance(result, End):
            self._end(live, result)
        else:
            self._restore(live, result)

    def _sign(self, live: LiveExecution, outcome: Outcome) -> tuple[bytes, Outcome]:
        assert live.pending is not None
        what = f"{live.pending.describe()} at line {live.pending.line}"
        try:
            blob = self.signer.dumps(_payload(outcome))
        except Exception as error:
            outcome = Outcome(
                error=SerializationError(what, f"its answer cannot be stored: {error}")
            )
            return self.signer.dumps(_payload(outcome)), outcome
        if len(blob) > self.options.max_answer_bytes:
            outcome = Outcome(
                error=AnswerTooLargeError(what, len(blob), self.options.max_answer_bytes)
            )
            blob = self.signer.dumps(_payload(outcome))
        return blob, outcome

    def _settle(
        self,
        live: LiveExecution,
        event: Event,
        answer: bytes | None,
        changes: dict[str, Any],
        logs: tuple[LogRecord, ...],
    ) -> None:
        """Store what the flow did after its last answer: a new savepoint, or its end."""
        if isinstance(event, Parked):
            savepoint = self._savepoint(live, event, answer)
            commit = StepCommit(live.execution_id, live.version, changes, savepoint, logs)
            self._advance(live, savepoint, commit, event)
            return
        if isinstance(event, Returned):
            changes.update(_ended(Status.ENDED_SUCCESS), message=live.state.message)
        elif isinstance(event, Raised):
            changes.update(_ended(Status.ENDED_ERROR), error=event.trace, error_line=event.line)
            changes["message"] = f"{type(event.error).__name__}: {event.error}"
        elif isinstance(event, Diverged):
            changes.update(_ended(Status.ENDED_ERROR), error=str(event.error))
            changes.update(error_line=event.error.line, message=str(event.error))
        self._commit(live, StepCommit(live.execution_id, live.version, changes, None, logs))
        self.live.release(live.execution_id)
        live.close(EndSignal)

    def _savepoint(
        self, live: LiveExecution, event: Parked, answer: bytes | None
    ) -> SavepointRecord:
        call, head, reads = event.call, live.head, live.reads.take_new()
        return SavepointRecord(
            id=new_id(),
            execution_id=live.execution_id,
            seq=head.seq + 1 if head else 1,
            parent_id=head.id if head else None,
            call=call.name,
            line=call.line,
            name=call.label,
            created_at=_now(),
            digest=call.digest,
            answer=answer,
            variables=call.variables,
            reads=self.signer.dumps(reads) if reads else None,
        )

    def _advance(
        self, live: LiveExecution, savepoint: SavepointRecord, commit: StepCommit, event: Parked
    ) -> None:
        """Store the savepoint of the flow's next call and enqueue the step that performs it.

        While the execution stays live here, the step message is sent first and travels while
        the commit runs; that step waits for the commit before it performs anything, so no
        call is performed before its savepoint is stored. If the commit loses its fence, the
        step finds the database elsewhere and does nothing.
        """
        commit = self._stamped(commit)
        # The live execution keeps its head without the answer blob it no longer needs.
        live.head, live.pending = replace(savepoint, answer=None), event.call
        self._apply(live, commit)
        live.begin_commit()
        if not self.live.put(live):  # not kept here: commit first, any worker takes the step
            stored = self.store.commit_step(commit)
            live.end_commit(stored)
            if stored:
                self.dispatcher.enqueue_step(self._ticket(live))
            return
        stored = False
        try:
            self.dispatcher.enqueue_step(self._ticket(live), sticky=True)
            stored = self.store.commit_step(commit)
        finally:
            live.end_commit(stored)
            if not stored:
                self.live.forget(live)

    def _stamped(self, commit: StepCommit) -> StepCommit:
        # Every step write records where the execution is loaded, unless it says otherwise.
        return replace(commit, changes={"worker": self.worker, **commit.changes})

    def _commit(self, live: LiveExecution, commit: StepCommit) -> bool:
        commit = self._stamped(commit)
        if self.store.commit_step(commit):
            self._apply(live, commit)
            return True
        log.info("execution %s moved past version %s", live.execution_id, commit.version)
        self.live.release(live.execution_id)
        live.close()
        return False

    def _apply(self, live: LiveExecution, commit: StepCommit) -> None:
        live.version = commit.version + 1
        if "status" in commit.changes:
            live.status = Status(commit.changes["status"])
        if "wake_at" in commit.changes:
            live.wake_at = commit.changes["wake_at"]

    def _ticket(self, live: LiveExecution) -> StepTicket:
        assert live.head is not None and live.pending is not None
        head = live.head
        flow = live.state.flow_name
        return StepTicket(
            live.execution_id, live.version, flow, head.seq, live.pending.name, head.id
        )

    def _wait(self, live: LiveExecution, until: datetime) -> None:
        changes = {"status": Status.WAITING.value, "wake_at": until}
        if not self._commit(live, StepCommit(live.execution_id, live.version, changes)):
            return
        if (until - _now()).total_seconds() > self.options.sleep_max_s:
            # A long wait is not worth a parked thread: unload now, replay when it ends.
            self.live.release(live.execution_id)
            live.close()
        else:
            self.live.put(live)
        self.dispatcher.enqueue_step(self._ticket(live), eta=until)

    def _end(self, live: LiveExecution, end: End) -> None:
        changes = _ended(end.status)
        changes["message"] = end.message
        if end.status is Status.ENDED_ERROR:
            line = live.pending.line if live.pending else None
            changes.update(error=f"this.error() at line {line}: {end.message}", error_line=line)
        if self._commit(live, StepCommit(live.execution_id, live.version, changes)):
            self.live.release(live.execution_id)
            live.close(EndSignal)

    def _restore(self, live: LiveExecution, restore: Restore) -> None:
        changes = {"head_id": restore.target.id}
        commit = StepCommit(live.execution_id, live.version, changes, restored=restore.target.id)
        if self._commit(live, commit):
            self.live.release(live.execution_id)
            live.close()
            self._enqueue_restored(
                live.execution_id, live.version, live.state.flow_name, restore.target
            )

    def _enqueue_restored(
        self, execution_id: str, version: int, flow_name: str, target: SavepointRecord
    ) -> None:
        ticket = StepTicket(execution_id, version, flow_name, target.seq, "restore", target.id)
        self.dispatcher.enqueue_step(ticket)

    def _end_error(
        self, version: int, execution_id: str, message: str, trace: str | None, line: int | None
    ) -> None:
        changes = _ended(Status.ENDED_ERROR)
        changes.update(message=message, error=trace or message, error_line=line, worker=None)
        self.store.commit_step(StepCommit(execution_id, version, changes))

    def _script(self, flow_name: str, source: str) -> FlowScript:
        key = (flow_name, hashlib.sha256(source.encode()).hexdigest())
        script = self._scripts.get(key)
        if script is None:
            script = self._scripts[key] = FlowScript.compile(flow_name, source)
        return script


def _ended(status: Status) -> dict[str, Any]:
    return {"status": status.value, "ended_at": _now(), "wake_at": None, "worker": None}


def _payload(outcome: Outcome) -> tuple[Any, BaseException | None] | None:
    # What is stored of an outcome: None for the common "returned None", else (value, error).
    if outcome.value is None and outcome.error is None:
        return None
    return (outcome.value, outcome.error)


def _outcome(payload: tuple[Any, BaseException | None] | None) -> Outcome:
    return Outcome() if payload is None else Outcome(*payload)

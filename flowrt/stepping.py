"""A step, run by a worker: perform the pending Flow-API call, run the flow to its next one,
store that savepoint in one fenced write and send the step that performs it.

A step takes an execution that is parked at its pending call, from this process's live
cache or rebuilt by replaying its journal.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from flowrt.children import Children
from flowrt.clock import utc_now
from flowrt.dispatch import StepTicket
from flowrt.errors import DispatchError, EndSignal, FlowrtError
from flowrt.live import (
    Diverged,
    Event,
    FlowState,
    LiveExecution,
    Parked,
    Raised,
    Returned,
    Stopped,
    StopReason,
)
from flowrt.perform import REACHING_OUT, Answer, End, Restore, StepContext, Wait, perform
from flowrt.status import Status
from flowrt.storage.base import ExecutionRecord, LogRecord, SavepointRecord, StepCommit
from flowrt.writes import StepWrites, ended

log = logging.getLogger("flowrt")


class Stepping(StepWrites, Children):
    """The `Runtime` methods a worker's step runs."""

    def step(self, execution_id: str, version: int, head_id: str | None = None) -> None:
        """Advance the execution by one Flow-API call if it is still at `version` and `head_id`."""
        if execution_id in self._queued_here:
            self._queued_here.discard(execution_id)
            self.own_queue_stepped_at = time.monotonic()
        live, claimed = self.live.take(execution_id, version)
        if not claimed:
            return
        self.stats["steps"] += 1
        self.isolation.share()
        try:
            if live is not None and not live.wait_committed():
                live.close()  # its savepoint was never stored: the database decides below
                live = None
            claimed = False
            if live is not None and not (live.owned and time.monotonic() < live.lease_deadline):
                # Its lease may have lapsed (or went with a shared-queue step): claim it again.
                if not self._confirm(live):
                    return
                claimed = True
            if live is None:
                live = self._load(execution_id, version, head_id)
                if live is None:  # nothing to perform, or _load stepped it already
                    return
            self._perform(live, claimed)
        except BaseException:
            self.live.discard(execution_id)
            if live is not None:
                live.close()
            raise
        finally:
            self.isolation.leave()

    def fail(self, execution_id: str, version: int, trace: str) -> None:
        """End an execution ENDED_ERROR after a fault inside flowrt, if still at `version`."""
        message = "internal error in flowrt while stepping this execution; restore it to retry"
        self._end_error(version, execution_id, message, f"{message}\n{trace}", None)

    def _load(self, execution_id: str, version: int, head_id: str | None) -> LiveExecution | None:
        """Claim and rebuild the execution; None once it has ended its step itself.

        Only the paths that park nothing release the step here: once the flow is parked
        again, the next step may already be under way, and its claim is not ours to end.
        """
        began = time.monotonic()
        record = self._claim(execution_id, version, head_id)
        if record is None or (record.crashes and not self._isolate(record)):
            self.live.release(execution_id)
            return None
        state = FlowState(record.id, record.flow_name, dict(record.inputs), {}, None)
        try:
            journal, head = self.journal.entries(record)
            script = self._script(record.flow_name, record.source)
        except FlowrtError as error:
            self._end_error(record.version, record.id, str(error), None, None)
            self.live.release(execution_id)
            return None
        live = LiveExecution(
            script,
            state,
            journal,
            max_step_s=self.options.max_step_s,
            stop_grace_s=self.options.stop_grace_s,
        )
        self.live.attach(live)
        live.version, live.head, live.parent_id = record.version, head, record.parent_id
        live.lease_deadline = began + self.options.lease_s
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

    def _isolate(self, record: ExecutionRecord) -> bool:
        """Run the step of a suspect of a worker's death alone in this process, marked so.

        Should this worker die now, the death is the suspect's own (see `leases.reap`).
        If a long step here keeps it from running alone soon, it is handed back, with no
        holder, for the reaper to send on to another worker (False).
        """
        if not self.isolation.go_alone(self.options.alone_wait_s):
            log.info("suspect %s waits for a worker with no long step", record.id)
            self.store.unload(record.id, record.version, self.holder)
            return False
        log.warning(
            "execution %s was on a worker that died (%d time(s) at this savepoint): its step "
            "runs alone on %s",
            record.id,
            record.crashes,
            self.holder,
        )
        return self.store.mark_suspect(record.id, record.version, self.holder)

    def _restored_outputs(self, live: LiveExecution, record: ExecutionRecord) -> dict[str, Any]:
        # Outputs are part of the execution's state: after a restore, replay rebuilt the ones
        # that held at the restored savepoint, and the stored ones follow.
        changes: dict[str, Any] = {}
        if live.state.outputs != record.outputs:
            changes["outputs"] = live.state.outputs
        if live.state.message != record.message:
            changes["message"] = live.state.message
        return changes

    def _confirm(self, live: LiveExecution) -> bool:
        """Claim the execution at the live version again; False (and unloaded) if refused.

        A step sent to this worker skips the claim while its local lease lasts, and a load
        replays after its claim: meanwhile the execution may have been cancelled, paused,
        restored or taken over, and once that has returned, no call of its old timeline may
        reach outside. One conditional UPDATE, which renews the lease as well.
        """
        began, now = time.monotonic(), utc_now()
        held = self.store.confirm(
            live.execution_id, live.version, self.holder, now, self.lease_until(now)
        )
        if not held:
            self.stats["claims_refused"] += 1
            log.info("execution %s moved on from version %s", live.execution_id, live.version)
            self.live.discard(live.execution_id)
            live.close()
            return False
        live.owned, live.lease_deadline = True, began + self.options.lease_s
        return True

    def _perform(self, live: LiveExecution, claimed: bool = False) -> None:
        assert live.pending is not None
        if not claimed and live.pending.name in REACHING_OUT and not self._confirm(live):
            return
        context = StepContext(
            live,
            self.store,
            self.connectors,
            self.options,
            utc_now(),
            self.start_child,
            self.run_child,
            self.journal.signer,
            self.lock_freed,
        )
        result = perform(context, live.pending)
        if isinstance(result, Answer):
            blob, outcome = self.journal.sign(live, result.outcome)
            changes, logs = result.changes, result.logs
            if outcome is not result.outcome:
                # Its answer was refused (too large, cannot be stored): the flow gets an error
                # at the call instead, and a refused call changes nothing.
                changes, logs = {}, ()
            if live.status is Status.WAITING:  # its wait is over, however the call ended
                over = {"status": Status.RUNNING.value, "wake_at": None, "waits_on": None}
                changes = {**over, **changes}
            self._settle(live, live.resume(outcome), blob, changes, logs)
        elif isinstance(result, Wait):
            self._wait(live, result)
        elif isinstance(result, End):
            self._end(live, result)
        else:
            self._restore(live, result)

    def _settle(
        self,
        live: LiveExecution,
        event: Event,
        answer: bytes | None,
        changes: dict[str, Any],
        logs: tuple[LogRecord, ...],
    ) -> None:
        """Store what the flow did after its last answer: a new savepoint, or its end."""
        if isinstance(event, Stopped):
            self._stopped(live, event)
            return
        if isinstance(event, Parked):
            savepoint = self.journal.savepoint(live, event, answer)
            commit = StepCommit(live.execution_id, live.version, changes, savepoint, logs)
            self._advance(live, savepoint, commit, event)
            return
        if isinstance(event, Returned):
            changes.update(ended(Status.ENDED_SUCCESS), message=live.state.message)
        elif isinstance(event, Raised):
            trace, message = event.trace, f"{type(event.error).__name__}: {event.error}"
            changes.update(
                ended(Status.ENDED_ERROR), error=live.masked(trace), error_line=event.line
            )
            changes["message"] = live.masked(message)
        elif isinstance(event, Diverged):
            changes.update(ended(Status.ENDED_ERROR), error=str(event.error))
            changes.update(error_line=event.error.line, message=str(event.error))
        if self._commit(live, StepCommit(live.execution_id, live.version, changes, None, logs)):
            self._finish(live)

    def _stopped(self, live: LiveExecution, stopped: Stopped) -> None:
        """The flow was stopped while running its own code: end, or hand over, the execution."""
        if stopped.reason is StopReason.DEADLINE:
            where = f"line {stopped.line}" if stopped.line else "code outside the flow's file"
            message = (
                f"flow code ran longer than {self.options.max_step_s:g} s "
                f"(FLOWRT_MAX_STEP_SECONDS) without a Flow-API call: stopped at {where}"
            )
            if stopped.stuck:
                message += "; it could not be interrupted (blocked outside Python code)"
            changes = ended(Status.ENDED_ERROR)
            changes.update(message=message, error=message, error_line=stopped.line)
            if self._commit(live, StepCommit(live.execution_id, live.version, changes)):
                self._finish(live)
        else:  # cancelled, paused, restored, taken over, or this worker stops: nothing to store
            self.live.release(live.execution_id)
            live.close()
        if stopped.stuck:
            self.on_stuck(live)

    def _advance(
        self,
        live: LiveExecution,
        savepoint: SavepointRecord,
        commit: StepCommit,
        event: Parked,
    ) -> None:
        """Store the savepoint of the flow's next call and enqueue the step that performs it.

        While the execution stays live here, the step message is sent first and travels while
        the commit runs; that step waits for the commit before it performs anything, so no
        call is performed before its savepoint is stored. If the commit loses its fence, the
        step finds the database elsewhere and does nothing. If the message cannot be sent
        (the broker is away), the savepoint is stored all the same, so the call just
        performed is not performed again: the execution is unloaded here and in the database,
        and the reaper sends its step again once the broker takes messages.
        """
        # The live execution keeps its head without the answer blob it no longer needs.
        live.head, live.pending = replace(savepoint, answer=None), event.call
        if commit.changes.get("status") == Status.PAUSED.value:  # this.pause() was answered
            live.pending = None
            if self._commit(live, replace(commit, changes={**commit.changes, "worker": None})):
                self.live.release(live.execution_id)
                live.close()
            return
        commit = self._stamped(commit)
        self._apply(live, commit)
        live.begin_commit()
        kept = self.live.put(live)
        if not kept or len(self._queued_here) >= self.options.sticky_max:
            # Not for this worker now: commit first, then the least busy worker takes it.
            live.owned = False
            changes = {**commit.changes, "worker": None, "lease_until": self.lease_until()}
            stored = self._write(live, replace(commit, changes=changes))
            live.end_commit(stored)
            if stored:
                self._send(live)  # if it fails, the queued lease runs out: the reaper sends it
            elif kept:
                self.live.forget(live)
            return
        stored, sent, began = False, False, time.monotonic()
        commit = replace(commit, changes={**commit.changes, "lease_until": self.lease_until()})
        live.step_expected_by = began + self.options.lease_s
        try:
            self._queued_here.add(live.execution_id)
            sent = self._send(live, self.worker)
            stored = self._write(live, commit)
        finally:
            if stored:
                live.lease_deadline = began + self.options.lease_s
            live.end_commit(stored)
            if not sent:
                self._queued_here.discard(live.execution_id)
            if not (stored and sent):
                self.live.forget(live)
        if stored and not sent:
            # No holder: the reaper sends it on as soon as it can, and counts no crash.
            self.store.unload(live.execution_id, live.version, self.holder)

    def _send(self, live: LiveExecution, worker: str | None = None) -> bool:
        """Enqueue the step of `live`'s pending call; False if the broker cannot take it."""
        try:
            self.dispatcher.enqueue_step(self._ticket(live), worker=worker)
        except DispatchError as error:
            log.warning("%s", error)
            return False
        return True

    def _stamped(self, commit: StepCommit) -> StepCommit:
        # Every step write records where the execution is loaded, unless it says otherwise.
        return replace(commit, changes={"worker": self.holder, **commit.changes})

    def _commit(self, live: LiveExecution, commit: StepCommit) -> bool:
        commit = self._stamped(commit)
        if self._write(live, commit):
            self._apply(live, commit)
            return True
        log.info("execution %s was not stored at version %s", live.execution_id, commit.version)
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

    def _wait(self, live: LiveExecution, wait: Wait) -> None:
        """Store that the execution waits; it stays loaded here only while the wait is short.

        A sleep longer than sleep_max is unloaded at once and woken by the reaper when due; a
        short one sends its step to this worker for when it ends. A wait for children stays
        loaded until a child wakes it, or sleep_max passes and the heartbeat unloads it.
        """
        until = wait.until
        unload = (
            until is not None and (until - utc_now()).total_seconds() > self.options.sleep_max_s
        )
        changes: dict[str, Any] = {
            "status": Status.WAITING.value,
            "wake_at": until,
            "waits_on": wait.waits_on,
        }
        if unload:
            changes.update(worker=None, lease_until=None)
        if not self._commit(live, StepCommit(live.execution_id, live.version, changes)):
            return
        if unload:
            self.live.release(live.execution_id)
            live.close()
            self._recheck_lock(wait.waits_on)
            return
        live.idle_since = time.monotonic()
        if not self.live.put(live):
            self.store.unload(live.execution_id, live.version, self.holder)
        if until is not None:
            due_in_s = max((until - utc_now()).total_seconds(), 0.0)
            live.step_expected_by = time.monotonic() + due_in_s + self.options.lease_s
            self.dispatcher.enqueue_step(self._ticket(live), worker=self.worker, eta=until)
        elif any(child.status.ended for child in self.store.get_executions(wait.children)):
            self._wake(live.execution_id)  # a child ended while this wait was being stored
        self._recheck_lock(wait.waits_on)

    def _end(self, live: LiveExecution, end: End) -> None:
        changes = ended(end.status)
        changes["message"] = live.masked(end.message)
        if end.status is Status.ENDED_ERROR:
            line = live.pending.line if live.pending else None
            call = live.pending.name if live.pending else "error"  # this.error() or this.end()
            said = live.masked(end.message)
            changes.update(error=f"this.{call}() at line {line}: {said}", error_line=line)
        if self._commit(live, StepCommit(live.execution_id, live.version, changes)):
            self._finish(live)

    def _finish(self, live: LiveExecution) -> None:
        self.live.release(live.execution_id)
        live.close(EndSignal)
        self._release_locks(live.execution_id)
        if live.parent_id is not None:
            self._wake(live.parent_id)

    def _restore(self, live: LiveExecution, restore: Restore) -> None:
        # Unloaded here: the step goes to the shared queue, and whoever takes it may claim it.
        changes = {"head_id": restore.target.id, "worker": None, "lease_until": self.lease_until()}
        commit = StepCommit(live.execution_id, live.version, changes, restored=restore.target.id)
        if self._commit(live, commit):
            self.live.release(live.execution_id)
            live.close()
            self._enqueue_restored(
                live.execution_id, live.version, live.state.flow_name, restore.target
            )

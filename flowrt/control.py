"""Operations a client asks of a runtime: restore, archive, pause, resume and cancel."""

from __future__ import annotations

from flowrt.clock import utc_now
from flowrt.errors import ArchivedExecutionError, InvalidCallError, SavepointNotFoundError
from flowrt.locks import Locks
from flowrt.status import RESTORABLE, Status
from flowrt.storage.base import ExecutionRecord


class Control(Locks):
    """The `Runtime` methods that change an execution from outside its flow."""

    def restore(self, execution_id: str, ref: str, by: str = "id") -> ExecutionRecord:
        """Restore an execution to its savepoint `ref` (by `'id'` or `'name'`) and run it.

        A restore is a new attempt at the savepoint's call. A PAUSED execution stays PAUSED,
        at the restored savepoint, until `resume`. Setting locks are outside the execution: a
        restore keeps those it holds; one that had ended gave them back at its end.
        """
        current = self.store.get_execution(execution_id)
        if current.archived_at is not None and current.status in RESTORABLE:
            raise ArchivedExecutionError(execution_id, current.archived_at.isoformat())
        if current.status.ended:
            self._release_locks(execution_id)  # should its end's release have been lost
        if by == "name":
            target = self.store.find_named(current.head_id, ref) if current.head_id else None
            if target is None:
                raise SavepointNotFoundError(execution_id, ref, "name")
            ref = target.id
        elif by != "id":
            raise InvalidCallError(f"restore by {by!r}: by must be 'id' or 'name'")
        record = self.store.restore(execution_id, ref, RESTORABLE, self.lease_until())
        target = self.store.get_savepoint(ref)
        assert target is not None, "store.restore refuses a savepoint it cannot find"
        if record.status is not Status.PAUSED:
            self._enqueue_restored(record.id, record.version, record.flow_name, target)
        return record

    def archive(self, execution_id: str) -> ExecutionRecord:
        """Delete an ended execution's savepoints; status, outputs and logs stay."""
        record = self.store.archive(execution_id)
        self._release_locks(execution_id)  # given back at its end already, unless that was lost
        return record

    def pause(self, execution_id: str) -> ExecutionRecord:
        """Pause a running or waiting execution; a step already under way is not stored."""
        allowed = {Status.RUNNING, Status.WAITING}
        return self.store.set_status(execution_id, Status.PAUSED, allowed)

    def resume(self, execution_id: str) -> ExecutionRecord:
        """Let a paused execution go on from its newest savepoint."""
        lease = self.lease_until()
        record = self.store.set_status(execution_id, Status.RUNNING, {Status.PAUSED}, lease)
        self.send(record, "resume")
        return record

    def cancel(self, execution_id: str) -> list[ExecutionRecord]:
        """End the execution ENDED_CANCELLED, with every descendant that has not ended yet.

        Returns the executions it cancelled. A parent waiting for the execution is woken.
        """
        cancelled = self.store.cancel(execution_id, utc_now())
        ids = {record.id for record in cancelled}
        for record in cancelled:
            self._release_locks(record.id)
            if record.parent_id is not None and record.parent_id not in ids:
                self._wake(record.parent_id)
        return cancelled

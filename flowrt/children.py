"""Child executions: a flow's `this.flow(...)` starts one, and its end wakes the parent."""

from __future__ import annotations

import uuid
from typing import Any

from flowrt.core import RuntimeCore
from flowrt.errors import InvalidStateError
from flowrt.live import LiveExecution
from flowrt.script import resolve_flow
from flowrt.status import Status
from flowrt.storage.base import ExecutionRecord

_CHILDREN = uuid.UUID("6d1f3c1e-2a4b-4c8e-9f10-7a5b3c2d1e0f")  # namespace of child ids


class Children(RuntimeCore):
    """The `Runtime` methods that start children and wake their parents."""

    def start_child(
        self,
        parent: LiveExecution,
        flow: str,
        inputs: dict[str, Any] | None,
        name: str | None = None,
        run: bool = True,
    ) -> ExecutionRecord:
        """Start `flow` as a child of `parent`'s pending call (with `run=False`: create it
        PAUSED, for `run_child` to start later).

        A step that runs again (a crash) finds the child it started; a restore of the call's
        savepoint is a new attempt and starts a new child, the old one keeps its history.
        """
        head = parent.head
        assert head is not None, "a child is started at its call's savepoint"
        seed = f"{head.id}:{head.restored}" if head.restored else head.id
        child_id = str(uuid.uuid5(_CHILDREN, seed))
        existing = self.store.get_executions([child_id])
        if existing:
            return existing[0]
        flow_name, source = resolve_flow(self.store, flow, self.journal.signer)
        return self.start(
            flow_name,
            source,
            inputs,
            parent_id=parent.execution_id,
            execution_id=child_id,
            name=name,
            run=run,
        )

    def run_child(self, child: ExecutionRecord) -> ExecutionRecord:
        """Start a child created with `run=False`; one started already is left as it is.

        Only a PAUSED child with no savepoint yet is started, in one fenced update, so a
        step that runs again (a crash) never starts it twice, and a child an operator
        paused is not resumed behind their back.
        """
        if child.status is not Status.PAUSED or child.head_id is not None:
            return child
        try:
            record = self.store.set_status(
                child.id, Status.RUNNING, {Status.PAUSED}, self.lease_until()
            )
        except InvalidStateError:  # started (or cancelled) meanwhile
            return self.store.get_execution(child.id)
        # Should this message be lost, the lease runs out and the reaper sends it again.
        self.send(record, "run")
        return record

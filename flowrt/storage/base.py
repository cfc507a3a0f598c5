"""The storage contract: records, and the `Store` every backend implements."""

from __future__ import annotations

import abc
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flowrt.status import Status


@dataclass(frozen=True)
class ExecutionRecord:
    """One execution as stored; `version` fences every write (`UPDATE ... WHERE version = v`)."""

    id: str
    flow_name: str
    source: str
    status: Status
    version: int
    head_id: str | None
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    message: str | None
    error: str | None
    error_line: int | None
    worker: str | None
    wake_at: datetime | None
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    archived_at: datetime | None
    lease_until: datetime | None = None
    parent_id: str | None = None
    crashes: int = 0
    suspect_on: str | None = None
    # Signs id, flow_name, source, inputs and parent_id (see flowrt/seals.py).
    signature: bytes | None = None
    # The execution's own name (None: it goes by its flow's name), and what it waits for
    # besides children ("message:ID", "lock:NAME"); both unsigned, neither is run.
    name: str | None = None
    waits_on: str | None = None

    @property
    def display_name(self) -> str:
        """The name shown for the execution: its own, else its flow's."""
        return self.name or self.flow_name


@dataclass(frozen=True)
class SavepointRecord:
    """One journal row: the state just before a Flow-API call.

    `reads` holds the signed time, random and uuid values the flow read just before the call.
    `answer` holds the signed outcome of the *previous* call on this row's timeline, so rows
    never change once written and a restore only moves the execution's head: row `seq` is
    reached by answering calls 1..seq-1 with the answers of rows 2..seq.
    """

    id: str
    execution_id: str
    seq: int
    parent_id: str | None
    call: str
    line: int
    name: str | None
    created_at: datetime
    digest: bytes
    answer: bytes | None
    restored: int = 0
    variables: dict[str, str] | None = None
    reads: bytes | None = None
    # Signs the row's place, call, digest and blobs (see flowrt/seals.py).
    signature: bytes | None = None
    # A short hash of the source it was made under (`script_hash`); None before 0012.
    script: str | None = None


@dataclass(frozen=True)
class LogRecord:
    """A line a flow logged, at the savepoint `seq` and source `line`."""

    execution_id: str
    seq: int
    line: int
    created_at: datetime
    message: str


@dataclass(frozen=True)
class NamedRecord:
    """A connector, flow, setting or file: a named value kept outside every execution."""

    kind: str
    name: str
    value: Any
    updated_at: datetime
    signature: bytes | None = None  # registered flows only: signs name and source


@dataclass(frozen=True)
class MessageRecord:
    """A message an execution sent to people (`system.message`), and their response.

    `body` is the form: a JSON schema of the response wanted, a text to show, or None.
    `response` stays None until someone responds, once (`responded_at` says when).
    """

    id: str
    execution_id: str
    subject: str
    message_type: str
    body: Any
    created_at: datetime
    response: dict[str, Any] | None = None
    responded_at: datetime | None = None

    @property
    def status(self) -> str:
        """`'PENDING'` until someone responds, then `'RESPONDED'`."""
        return "PENDING" if self.responded_at is None else "RESPONDED"


@dataclass(frozen=True)
class StepCommit:
    """What one step writes atomically, if the execution is still at `version`.

    `changes` maps execution columns to new values; `savepoint` becomes the new head;
    `restored` names a savepoint whose restore count goes up.
    """

    execution_id: str
    version: int
    changes: dict[str, Any] = field(default_factory=dict)
    savepoint: SavepointRecord | None = None
    logs: tuple[LogRecord, ...] = ()
    restored: str | None = None


class Store(abc.ABC):
    """Durable state of flowrt. Every public method is one transaction."""

    # --- executions -------------------------------------------------------------------------

    @abc.abstractmethod
    def create_execution(
        self,
        flow_name: str,
        source: str,
        inputs: dict[str, Any],
        *,
        execution_id: str | None = None,
        parent_id: str | None = None,
        lease_until: datetime | None = None,
        signature: bytes | None = None,
        name: str | None = None,
        status: Status = Status.RUNNING,
    ) -> ExecutionRecord:
        """Insert a new execution at version 0 with no savepoint yet, RUNNING (or PAUSED: a
        child created with `run=False`, which nothing runs until it is started).

        Given an `execution_id` that exists already, return that execution unchanged: a
        parent's step that runs again finds the child it started the first time.
        """

    @abc.abstractmethod
    def get_executions(self, execution_ids: Iterable[str]) -> list[ExecutionRecord]:
        """The executions with these ids that exist, in no particular order."""

    @abc.abstractmethod
    def list_children(self, parent_id: str) -> list[ExecutionRecord]:
        """The child executions of `parent_id`, oldest first."""

    @abc.abstractmethod
    def get_execution(self, execution_id: str) -> ExecutionRecord:
        """Return the execution; raises `ExecutionNotFoundError`."""

    @abc.abstractmethod
    def list_executions(
        self, limit: int = 50, status: Status | None = None, *, flow_name: str | None = None
    ) -> list[ExecutionRecord]:
        """Newest executions first (of flow `flow_name` only, if given)."""

    @abc.abstractmethod
    def commit_step(self, commit: StepCommit) -> bool:
        """Apply `commit`; False (and nothing written) when the version moved on."""

    @abc.abstractmethod
    def restore(
        self,
        execution_id: str,
        savepoint_id: str,
        allowed: Iterable[Status],
        lease_until: datetime | None = None,
        *,
        version: int | None = None,
        changes: dict[str, Any] | None = None,
    ) -> ExecutionRecord:
        """Move the head to `savepoint_id`, status RUNNING, count the restore; one transaction.

        A PAUSED execution stays PAUSED (with no lease) until it is resumed. With `version`,
        raises `ExecutionChangedError` unless the execution is still at it; `changes` are
        further columns to set with the restore (a new source and its signature).
        """

    @abc.abstractmethod
    def move_source(
        self,
        execution_id: str,
        version: int,
        allowed: Iterable[Status],
        changes: dict[str, Any],
        lease_until: datetime | None = None,
    ) -> ExecutionRecord:
        """Set `changes` (a new source and its signature) on an execution still at `version`.

        The status stays; the execution is unloaded at a new version, so that its next step
        rebuilds it from the new source (a RUNNING one holds `lease_until` for that step).
        Raises `InvalidStateError` outside `allowed`, `ExecutionChangedError` off `version`.
        """

    @abc.abstractmethod
    def set_status(
        self,
        execution_id: str,
        status: Status,
        allowed: Iterable[Status],
        lease_until: datetime | None = None,
    ) -> ExecutionRecord:
        """Pause or resume: set `status` from one of `allowed`, unloaded, at a new version."""

    @abc.abstractmethod
    def cancel(self, execution_id: str, now: datetime) -> list[ExecutionRecord]:
        """End the execution and every descendant not ended yet ENDED_CANCELLED; return them."""

    # --- leases: who answers for an execution, and until when --------------------------------

    @abc.abstractmethod
    def claim(
        self,
        execution_id: str,
        version: int,
        worker: str,
        now: datetime,
        lease_until: datetime,
        head_id: str | None = None,
    ) -> ExecutionRecord | None:
        """Make `worker` the holder of a RUNNING or WAITING execution still at `version`
        (and at `head_id`, if given).

        Refused (None) while another worker holds an unexpired lease on it.
        """

    @abc.abstractmethod
    def confirm(
        self, execution_id: str, version: int, worker: str, now: datetime, lease_until: datetime
    ) -> bool:
        """`claim` in one round trip that returns only whether it was granted.

        A step calls it just before a call that reaches outside the execution.
        """

    @abc.abstractmethod
    def renew_leases(
        self, worker: str, execution_ids: Iterable[str], lease_until: datetime
    ) -> set[str]:
        """Extend the leases `worker` holds on these executions; return the ids it still holds."""

    @abc.abstractmethod
    def unload(self, execution_id: str, version: int, worker: str) -> bool:
        """Record that `worker` no longer has the execution in memory (it waits, unloaded)."""

    @abc.abstractmethod
    def release_worker(self, worker: str, now: datetime) -> int:
        """A worker stops: its running executions' leases end now, waiting ones are unloaded."""

    @abc.abstractmethod
    def wake(
        self, execution_id: str, now: datetime, lease_until: datetime
    ) -> ExecutionRecord | None:
        """Mark an execution waiting for its children as due; None if it is not waiting for them."""

    @abc.abstractmethod
    def wake_parents(self, now: datetime) -> int:
        """Mark due every parent waiting for children of which one ended after the wait began."""

    @abc.abstractmethod
    def overdue(self, now: datetime, limit: int) -> list[ExecutionRecord]:
        """Executions nobody answers for: running, or due to wake, with no unexpired lease.

        Oldest lease first; those never leased (just unloaded) come first of all.
        """

    @abc.abstractmethod
    def take_over(
        self, execution_ids: Iterable[str], now: datetime, lease_until: datetime
    ) -> list[ExecutionRecord]:
        """Of these, move each still overdue to a new version with a fresh queued lease.

        One that a worker held counts a crash (`crashes` + 1); its `suspect_on` stays set only
        if its step ran alone on that worker, so the death was its own.
        """

    @abc.abstractmethod
    def mark_suspect(self, execution_id: str, version: int, worker: str) -> bool:
        """Record that `worker`, which holds the execution at `version`, steps it alone."""

    @abc.abstractmethod
    def archive(self, execution_id: str) -> ExecutionRecord:
        """Delete the savepoints of an ended execution, keeping its status, outputs and logs."""

    @abc.abstractmethod
    def delete_execution(self, execution_id: str) -> list[str]:
        """Delete an ended execution with its descendants, savepoints, logs and messages.

        Returns the ids deleted (none if it does not exist). Raises `InvalidStateError`, and
        deletes nothing, while it or one of its descendants has not ended.
        """

    # --- savepoints -------------------------------------------------------------------------

    @abc.abstractmethod
    def get_savepoint(self, savepoint_id: str) -> SavepointRecord | None:
        """The savepoint with this id, of whichever execution, or None."""

    @abc.abstractmethod
    def get_timeline(self, head_id: str, *, variables: bool = True) -> list[SavepointRecord]:
        """The chain from the root savepoint to `head_id`, oldest first; without `variables`,
        each record's variables snapshot is left out (None): replay needs none of them."""

    @abc.abstractmethod
    def find_named(self, head_id: str, name: str) -> SavepointRecord | None:
        """The newest savepoint called `name` on the timeline ending at `head_id`."""

    @abc.abstractmethod
    def count_returns(self, savepoint: SavepointRecord) -> int:
        """How often its flow came back to `savepoint`'s call without getting further.

        Counts the savepoints of its execution with the same call, line and seq (this one
        too), made after the newest one deeper than it: a timeline that went further since
        starts the count again.
        """

    @abc.abstractmethod
    def list_savepoints(self, execution_id: str) -> list[SavepointRecord]:
        """Every savepoint of the execution, all branches, in the order they were made."""

    @abc.abstractmethod
    def list_logs(self, execution_id: str) -> list[LogRecord]:
        """The execution's log lines, oldest first."""

    # --- named objects: connectors, flows, settings, files -----------------------------------

    @abc.abstractmethod
    def put_named(self, kind: str, name: str, value: Any, signature: bytes | None = None) -> None:
        """Create or replace the `kind` object `name` (value is JSON for all but files)."""

    @abc.abstractmethod
    def get_named(self, kind: str, name: str) -> NamedRecord | None:
        """The `kind` object `name`, or None."""

    @abc.abstractmethod
    def list_named(self, kind: str, prefix: str | None = None) -> list[NamedRecord]:
        """All objects of `kind` (whose name starts with `prefix`, if given), by name."""

    @abc.abstractmethod
    def append_named(
        self, kind: str, name: str, item: Any, max_length: int | None = None
    ) -> str | None:
        """Append `item` to the list record `name` holds (created as `[item]` if missing or
        None), keeping its last `max_length` items; atomic against concurrent appenders.
        Returns None, or the type name of a value that is not a list (nothing changes)."""

    @abc.abstractmethod
    def delete_named(self, kind: str, name: str) -> bool:
        """Delete the object; False if there was none."""

    # --- messages: what executions ask people, and their responses ----------------------------

    @abc.abstractmethod
    def create_message(self, message: MessageRecord) -> MessageRecord:
        """Insert `message`; if its id exists already, return the stored one unchanged (a step
        that runs again finds the message it sent the first time)."""

    @abc.abstractmethod
    def get_message(self, message_id: str) -> MessageRecord | None:
        """The message with this id, or None."""

    @abc.abstractmethod
    def list_messages(self, execution_id: str | None = None) -> list[MessageRecord]:
        """The messages of `execution_id`, oldest first; without one, those pending: not
        responded to, sent by an execution that has not ended or waited for by one."""

    @abc.abstractmethod
    def respond_message(
        self, message_id: str, response: dict[str, Any], now: datetime
    ) -> MessageRecord:
        """Store the response of a message that has none yet, atomically: raises
        `MessageAnsweredError` if it has one (never replaced), `NotFoundError` if none."""

    @abc.abstractmethod
    def list_waiting_on(self, waits_on: str) -> list[ExecutionRecord]:
        """The WAITING executions whose `waits_on` is this ("message:ID", "lock:NAME")."""

    @abc.abstractmethod
    def wake_waiting_on(
        self, waits_on: str, now: datetime, lease_until: datetime
    ) -> list[ExecutionRecord]:
        """Mark due now every WAITING execution whose `waits_on` is this and whose wake-up is
        not past already; return them (their step is to be sent)."""

    @abc.abstractmethod
    def wake_answered(self, now: datetime) -> int:
        """Mark due every WAITING execution with no wake-up time that waits for a message
        which has its response (the reaper's cover for a lost wake-up)."""

    # --- setting locks: a setting held by one execution at a time (storage/locks.py) --------

    @abc.abstractmethod
    def acquire_lock(self, name: str, execution_id: str, now: datetime) -> str | None:
        """Make `execution_id` the holder of setting `name`'s lock, creating the setting (value
        None) if there is none; None when it holds the lock now, else the holder's id.

        The lock is free when nobody holds it or its holder has ended (or no longer exists);
        the holder acquiring again keeps it. Never two holders, also under concurrency.
        """

    @abc.abstractmethod
    def release_lock(self, name: str, execution_id: str) -> str | None:
        """Free setting `name`'s lock if `execution_id` holds it; returns who held it: that
        id (freed now), another unended execution's (it stays held), or None (it was free)."""

    @abc.abstractmethod
    def release_locks(self, execution_id: str) -> list[str]:
        """Free every lock `execution_id` holds; the names of the settings freed."""

    @abc.abstractmethod
    def lock_holder(self, name: str) -> str | None:
        """The unended execution holding setting `name`'s lock, or None if it is free."""

    @abc.abstractmethod
    def list_lock_waiters(self, name: str) -> list[ExecutionRecord]:
        """The WAITING executions whose pending call waits for setting `name`'s lock."""

    @abc.abstractmethod
    def wake_lock_waiters(self, now: datetime) -> int:
        """Mark due every waiter with no wake-up time whose lock is free; how many.

        The reaper's pass: it recovers a wake-up lost when a lock was given back.
        """

"""A step's write: stored alone again on transient faults, and the end of an execution whose
write the database refuses for good.

The step's call was performed already when its write runs: retrying the whole step would
perform it again, so only the write is tried again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from flowrt.clock import utc_now
from flowrt.live import LiveExecution
from flowrt.locks import Locks
from flowrt.status import Status
from flowrt.storage.base import StepCommit
from flowrt.storage.faults import Backoff, describe, is_permanent, retry_transient
from flowrt.values import storable_text

log = logging.getLogger("flowrt")


class StepWrites(Locks):
    """The `Runtime` methods that store a step's write, or end an execution it cannot store."""

    def _write(self, live: LiveExecution, commit: StepCommit) -> bool:
        """Store `commit`; a write the database refuses for good ends the execution.

        Returns whether it was stored: False also when its fence was lost.
        """
        commit = _storable(commit)
        try:
            return self._store_step(commit)
        except Exception as error:
            if not is_permanent(error):
                raise
            pending = live.pending.line if live.pending is not None else None
            line = commit.savepoint.line if commit.savepoint is not None else pending
            self._end_refused(commit.execution_id, commit.version, error, line)
            return False

    def _store_step(self, commit: StepCommit) -> bool:
        """Store `commit`, trying the write alone again while the database fails transiently.

        The step's call was performed already: retrying the whole step would perform it
        again. A write that failed as its connection dropped may have been stored all the
        same; an attempt after it that finds its own savepoint at the head says so.
        """
        failed = False

        def attempt() -> bool:
            nonlocal failed
            try:
                stored = self.store.commit_step(commit)
            except Exception:
                failed = True
                raise
            return stored or (failed and self._stored_before(commit))

        def on_retry(error: BaseException, delay_s: float) -> None:
            log.warning(
                "execution %s: storing version %s failed (%s); trying the write again in %.2f s",
                commit.execution_id,
                commit.version,
                describe(error),
                delay_s,
            )

        options = self.options
        backoff = Backoff(
            options.commit_attempts, options.commit_retry_s, options.commit_retry_max_s
        )
        return retry_transient(attempt, backoff, time.sleep, on_retry)

    def _stored_before(self, commit: StepCommit) -> bool:
        if commit.savepoint is None:
            return False  # unknown: the caller treats it as a lost fence, which is safe
        record = self.store.get_execution(commit.execution_id)
        return record.version == commit.version + 1 and record.head_id == commit.savepoint.id

    def _end_error(
        self,
        version: int,
        execution_id: str,
        message: str,
        trace: str | None,
        line: int | None,
    ) -> bool:
        changes = ended(Status.ENDED_ERROR)
        changes.update(message=message, error=trace or message, error_line=line, worker=None)
        if not self._store_step(StepCommit(execution_id, version, changes)):
            return False
        self._release_locks(execution_id)
        parent_id = self.store.get_execution(execution_id).parent_id
        if parent_id is not None:
            self._wake(parent_id)
        return True

    def fail_write(self, execution_id: str, version: int, error: BaseException) -> None:
        """End an execution ENDED_ERROR, if still at `version`, as the database refused a write."""
        self._end_refused(execution_id, version, error, None)

    def _end_refused(
        self, execution_id: str, version: int, error: BaseException, line: int | None
    ) -> None:
        # Never retried: the same write would be refused again. The message names the
        # database's error, never the statement's parameters (they hold flow variables).
        cause = describe(error)
        at = f" at line {line}" if line is not None else ""
        message = (
            f"the database refused to store this execution's step{at}: {cause}; "
            "remove the cause, then restore the execution"
        )
        log.error(
            "execution %s v%s ends: the database refused it (%s)", execution_id, version, cause
        )
        self._end_error(version, execution_id, message, None, line)


def ended(status: Status) -> dict[str, Any]:
    """The changes that end an execution with `status` and unload it."""
    return {
        "status": status.value,
        "ended_at": utc_now(),
        "wake_at": None,
        "waits_on": None,
        "worker": None,
        "lease_until": None,
    }


def _storable(commit: StepCommit) -> StepCommit:
    # A flow's error message or traceback may hold text no database stores (NUL, a lone
    # surrogate): escaped here, the execution still ends with its own error.
    texts = {
        key: storable_text(value)
        for key, value in commit.changes.items()
        if key in ("message", "error") and isinstance(value, str)
    }
    return replace(commit, changes={**commit.changes, **texts}) if texts else commit

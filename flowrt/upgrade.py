"""Moving an execution onto a corrected script, once a dry run has checked it against its
journal: restore it under the script (`restore --script`), or upgrade it at its head."""

from __future__ import annotations

from typing import Any

from flowrt.core import RuntimeCore
from flowrt.dryrun import CheckReport, check, checked
from flowrt.errors import (
    ArchivedExecutionError,
    ExecutionChangedError,
    IncompatibleScriptError,
    InvalidStateError,
)
from flowrt.seals import sign_execution
from flowrt.status import RESTORABLE, Status
from flowrt.storage.base import ExecutionRecord

UPGRADABLE = frozenset({Status.RUNNING, Status.WAITING, Status.PAUSED})
UPGRADE_ATTEMPTS = 5  # checks of a running execution that moved on meanwhile, before giving up


class Upgrades(RuntimeCore):
    """The `Runtime` methods that check a script against an execution and move it onto it."""

    def check(
        self, execution_id: str, source: str, to: str | None = None, by: str = "id"
    ) -> CheckReport:
        """Dry-run `source` against the execution's journal up to savepoint `to` (its head)."""
        return check(self.store, self.journal.signer, execution_id, source, to, by)

    def restore_under(self, execution_id: str, ref: str, by: str, source: str) -> ExecutionRecord:
        """Restore the execution to savepoint `ref` under `source`, if `source` replays there.

        Refused with `IncompatibleScriptError`, changing nothing, when it does not. The
        savepoints before `ref` keep the script they were made under (`SavepointRecord.script`).
        """
        current = self.store.get_execution(execution_id)
        if current.archived_at is not None and current.status in RESTORABLE:
            raise ArchivedExecutionError(execution_id, current.archived_at.isoformat())
        _check_status(current, RESTORABLE, "restore")
        report, record = checked(self.store, self.journal.signer, execution_id, source, ref, by)
        if not report.compatible or report.to is None:
            raise IncompatibleScriptError(execution_id, report.describe())
        moved = self.store.restore(
            execution_id,
            report.to.id,
            RESTORABLE,
            self.lease_until(),
            version=record.version,
            changes=self._source_changes(record, source),
        )
        target = self.store.get_savepoint(report.to.id)
        assert target is not None, "store.restore refuses a savepoint it cannot find"
        if moved.status is not Status.PAUSED:
            self._enqueue_restored(moved.id, moved.version, moved.flow_name, target)
        return moved

    def upgrade(self, execution_id: str, source: str) -> ExecutionRecord:
        """Move a running, waiting or paused execution onto `source` at its head.

        Its live copy on a worker is dropped: the next step rebuilds it from `source`. A
        running execution that moves on during the check is checked again at its new head.
        """
        for attempt in range(1, UPGRADE_ATTEMPTS + 1):
            _check_status(self.store.get_execution(execution_id), UPGRADABLE, "upgrade")
            report, record = checked(self.store, self.journal.signer, execution_id, source)
            if not report.compatible:
                raise IncompatibleScriptError(execution_id, report.describe())
            try:
                moved = self.store.move_source(
                    execution_id,
                    record.version,
                    UPGRADABLE,
                    self._source_changes(record, source),
                    self.lease_until(),
                )
            except ExecutionChangedError:
                if attempt == UPGRADE_ATTEMPTS:
                    raise
                continue
            if moved.status is Status.RUNNING:
                self.send(moved, "upgrade")
            return moved
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _source_changes(self, record: ExecutionRecord, source: str) -> dict[str, Any]:
        # The new source is compiled and checked by now; signed as a start signs it, over
        # the inputs and parent of the row whose signature the check verified.
        signature = sign_execution(
            self.journal.signer,
            record.id,
            record.flow_name,
            source,
            record.inputs,
            record.parent_id,
        )
        return {"source": source, "signature": signature}


def _check_status(record: ExecutionRecord, allowed: frozenset[Status], action: str) -> None:
    if record.status not in allowed:
        wanted = ", ".join(sorted(s.value for s in allowed))
        raise InvalidStateError(record.id, record.status.value, action, wanted)

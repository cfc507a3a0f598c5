"""Moving an execution onto a corrected script, once a dry run has checked it against its
journal: restore it under the script (`restore --script`), or upgrade it at its head."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowrt.core import RuntimeCore
from flowrt.dryrun import CheckReport, Mark, check, checked
from flowrt.errors import (
    ArchivedExecutionError,
    ExecutionChangedError,
    FlowrtError,
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


LATEST_COMPATIBLE = "latest-compatible"  # `--to` of a bulk restore: each one's newest fit


@dataclass(frozen=True)
class BulkRestore:
    """What a bulk restore did with one execution, or would do (`dry_run`), and why."""

    execution_id: str
    restored: bool
    savepoint: Mark | None
    reason: str


class BulkRestores(Upgrades):
    """The `Runtime` method restoring many errored executions under one corrected script."""

    def restore_many(
        self,
        records: list[ExecutionRecord],
        source: str,
        to: str = LATEST_COMPATIBLE,
        dry_run: bool = False,
    ) -> list[BulkRestore]:
        """Check `source` against each execution and restore the compatible ones under it.

        `to` is a savepoint name, restored where the script fits up to it, or
        `latest-compatible`: each execution's newest savepoint the script fits. One that
        fits nowhere, or fails otherwise, is skipped with its reason; nothing is changed on
        a `dry_run`.
        """
        done = []
        for record in records:
            try:
                done.append(self._restore_one(record, source, to, dry_run))
            except FlowrtError as error:
                done.append(BulkRestore(record.id, False, None, str(error)))
        return done

    def _restore_one(
        self, record: ExecutionRecord, source: str, to: str, dry_run: bool
    ) -> BulkRestore:
        ref, by = (None, "id") if to == LATEST_COMPATIBLE else (to, "name")
        report = self.check(record.id, source, ref, by)
        target = report.to if report.compatible else report.newest_compatible
        if target is None or (ref is not None and not report.compatible):
            return BulkRestore(record.id, False, None, _why(report))
        fit = "compatible" if report.compatible else f"{_why(report)}; compatible"
        if dry_run:
            return BulkRestore(record.id, False, target, f"would restore: {fit} up to {target}")
        self.restore_under(record.id, target.id, "id", source)
        return BulkRestore(record.id, True, target, f"{fit} up to {target}")


def _why(report: CheckReport) -> str:
    if report.compatible:
        return "compatible"
    where = f" ({report.found})" if report.found else ""
    return f"{report.problem}{where}"

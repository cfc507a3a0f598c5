"""A dry run of a script against an execution's journal: would it replay there, and how far?

The check runs the script as a restore would replay it: every Flow-API call is answered from
the journal (nothing is performed: no connector call, setting write, child start or log),
and each call must match its journal row by name and argument digest, in order, as replay
requires. It stops at the savepoint it checks up to, where a restore would go on live.
"""

from __future__ import annotations

import linecache
from dataclasses import dataclass, replace
from typing import Any

from flowrt.blobs import Signer
from flowrt.calls import Call, capture
from flowrt.errors import (
    ArchivedExecutionError,
    DeterminismError,
    ForeignSavepointError,
    InvalidCallError,
    SavepointNotFoundError,
    ScriptError,
)
from flowrt.journal import Journal
from flowrt.live import (
    Diverged,
    Event,
    FlowState,
    LiveExecution,
    Parked,
    Raised,
    ReplayEntry,
    Returned,
    Stopped,
)
from flowrt.script import FlowScript, script_hash
from flowrt.storage.base import ExecutionRecord, SavepointRecord, Store

DRY_RUN_MAX_STEP_S = 60.0  # seconds the script may run its own code between two calls
_RETURNS = "returns from its handler"  # what LiveExecution says of a flow that ends too soon


@dataclass(frozen=True)
class Mark:
    """A savepoint named in a report: its number on the timeline, id and name."""

    seq: int
    id: str
    name: str | None

    def __str__(self) -> str:
        return f"#{self.seq}" + (f" ({self.name})" if self.name else "")


@dataclass(frozen=True)
class CheckReport:
    """What the dry run found: compatible up to `to`, or where the script first differs.

    `recorded` and `found` describe the two sides of the first difference ("name(…) at line
    N" of the old script, what the new script does at its line); `newest_compatible` is the
    newest savepoint up to which the script still replays (None: not even the first one).
    """

    execution_id: str
    version: int  # the execution's version when checked: a restore is fenced on it
    script: str  # the short hash of the script checked
    compatible: bool
    to: Mark | None  # the savepoint checked up to; None if the execution has none yet
    newest_compatible: Mark | None
    diverged_at: int | None = None  # the savepoint whose call differs
    recorded: str | None = None
    recorded_line: int | None = None
    found: str | None = None
    found_line: int | None = None
    problem: str | None = None  # why, in one sentence

    def describe(self) -> str:
        """The report as `flowrt check` prints it."""
        if self.compatible:
            where = f"savepoint {self.to}" if self.to else "its start (no savepoint yet)"
            return f"compatible up to {where}"
        lines = [f"incompatible: {self.problem}"]
        if self.recorded is not None:
            lines.append(f"  recorded  {self.recorded}")
        if self.found is not None:
            lines.append(f"  now       {self.found}")
        newest = str(self.newest_compatible) if self.newest_compatible else "none"
        lines.append(f"newest compatible savepoint: {newest}")
        return "\n".join(lines)


def check(
    store: Store,
    signer: Signer,
    execution_id: str,
    source: str,
    to: str | None = None,
    by: str = "id",
    *,
    max_step_s: float = DRY_RUN_MAX_STEP_S,
) -> CheckReport:
    """Check `source` against the journal of `execution_id` up to savepoint `to` (its head).

    `to` is a savepoint id, or a name with `by='name'`. Raises before anything runs if the
    execution or savepoint cannot be found, or its stored rows fail their signatures.
    """
    return checked(store, signer, execution_id, source, to, by, max_step_s=max_step_s)[0]


def checked(
    store: Store,
    signer: Signer,
    execution_id: str,
    source: str,
    to: str | None = None,
    by: str = "id",
    *,
    max_step_s: float = DRY_RUN_MAX_STEP_S,
) -> tuple[CheckReport, ExecutionRecord]:
    """`check`, with the execution row it checked against (its signature verified)."""
    record = store.get_execution(execution_id)
    if record.archived_at is not None:
        raise ArchivedExecutionError(record.id, record.archived_at.isoformat())
    target = find_savepoint(store, record, to, by)
    entries, _ = Journal(store, signer, 0).entries(
        replace(record, head_id=target.id if target else None)
    )
    timeline = {row.seq: row for row in store.get_timeline(target.id)} if target else {}
    base = CheckReport(
        record.id,
        record.version,
        script_hash(source),
        compatible=False,
        to=_mark(target),
        newest_compatible=None,
    )
    try:
        script = FlowScript.compile(record.flow_name, source)
    except ScriptError as error:
        problem = f"the script cannot run: {error.problem}"
        return replace(base, problem=problem, found_line=error.line), record
    state = FlowState(record.id, record.flow_name, dict(record.inputs), {}, None)
    dry = _DryRun(script, state, entries, max_step_s=max_step_s)
    try:
        event = dry.start()
        report = _report(base, event, dry, record.source, timeline)
    finally:
        dry.close()
    return report, record


def find_savepoint(
    store: Store, record: ExecutionRecord, ref: str | None, by: str = "id"
) -> SavepointRecord | None:
    """The savepoint `ref` (an id, or a name on the current timeline), or the head for None."""
    if by not in ("id", "name"):
        raise InvalidCallError(f"by={by!r}: by must be 'id' or 'name'")
    if ref is None:
        return store.get_savepoint(record.head_id) if record.head_id else None
    if by == "name":
        target = store.find_named(record.head_id, ref) if record.head_id else None
    else:
        target = store.get_savepoint(ref)
        if target is not None and str(target.execution_id) != str(record.id):
            raise ForeignSavepointError(record.id, ref, target.execution_id)
    if target is None:
        raise SavepointNotFoundError(record.id, ref, by)
    return target


class _DryRun(LiveExecution):
    """A live execution that notes which calls matched their journal rows, and the first that
    did not; it performs nothing, and is closed once it parks at the savepoint checked."""

    def __init__(
        self, script: FlowScript, state: FlowState, journal: list[ReplayEntry], **options: Any
    ) -> None:
        super().__init__(script, state, journal, **options)
        self.entries = list(journal)
        self.matched = 0  # the seq of the last call that matched its row, in order
        self.differs: Call | None = None

    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], **extra: Any) -> Any:
        position = self.matched
        if self.differs is None and position < len(self.entries):
            call = capture(
                name,
                args,
                kwargs,
                self.script.filename,
                with_variables=False,
                known_secrets=self.secrets,  # those of the calls replayed before it too
                **extra,
            )
            entry = self.entries[position]
            if (entry.name, entry.digest) == (call.name, call.digest):
                self.matched = entry.seq
            else:
                self.differs = call
        return super().call(name, args, kwargs, **extra)


def _report(
    base: CheckReport,
    event: Event,
    dry: _DryRun,
    old_source: str,
    timeline: dict[int, SavepointRecord],
) -> CheckReport:
    if isinstance(event, Parked) or (isinstance(event, Returned) and not dry.entries):
        return replace(base, compatible=True, newest_compatible=base.to)
    newest, diverged_at = dry.matched, dry.matched + 1
    found: str | None = None
    found_line: int | None = None
    if isinstance(event, Diverged):
        error: DeterminismError = event.error
        if dry.differs is not None:
            diverged_at, newest = error.seq, min(newest, error.seq - 1)
            found, found_line = f"calls {dry.differs.describe()}", dry.differs.line
        elif error.found == _RETURNS:  # its line is the journal's: the new one has none
            found = _RETURNS
        else:  # it reads time, randomness or ids differently before the call at error.seq
            diverged_at, newest = error.seq, min(newest, error.seq - 1)
            found, found_line = error.found.rsplit(" at line ", 1)[0], error.line
        problem = f"the script differs from the journal at savepoint #{diverged_at}"
    elif isinstance(event, Raised):
        found, found_line = f"raises {type(event.error).__name__}: {event.error}", event.line
        problem = "the script raises an exception before it gets there"
    elif isinstance(event, Stopped):
        problem = f"the script ran its own code longer than {dry.max_step_s:g} s without a call"
        found_line = event.line
    else:
        problem = "the script did not get there"
    entry = next((e for e in dry.entries if e.seq == diverged_at), None)
    recorded = recorded_line = None
    if entry is not None:
        recorded_line = entry.line
        recorded = f"{entry.name}(…) at line {entry.line} of the old script"
        recorded += _quoted(old_source.splitlines(), entry.line)
    if found is not None and found_line:
        found += f" at line {found_line}"
        found += _quoted(linecache.getlines(dry.script.filename), found_line)
    return replace(
        base,
        newest_compatible=_mark(timeline.get(newest)),
        diverged_at=diverged_at if entry is not None else None,
        recorded=recorded,
        recorded_line=recorded_line,
        found=found,
        found_line=found_line,
        problem=problem,
    )


def _quoted(lines: list[str], line: int) -> str:
    if 0 < line <= len(lines):
        return f":  {lines[line - 1].strip()}"
    return ""


def _mark(savepoint: SavepointRecord | None) -> Mark | None:
    return None if savepoint is None else Mark(savepoint.seq, savepoint.id, savepoint.name)

"""How each Flow-API call is performed by a step, once its savepoint is stored."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flowrt.calls import Call, Outcome
from flowrt.connectors import Connectors
from flowrt.errors import (
    ConnectorError,
    DependencyFailedError,
    FlowrtError,
    ForeignSavepointError,
    InvalidCallError,
    NotFoundError,
    RestoreLoopError,
    SavepointNotFoundError,
    SerializationError,
)
from flowrt.flow_api import ChildRef, ReturnWhen, SavepointInfo
from flowrt.live import LiveExecution
from flowrt.options import Options
from flowrt.status import Status
from flowrt.storage.base import ExecutionRecord, LogRecord, SavepointRecord, Store
from flowrt.values import check_json, check_seconds, check_wake

ChildStarter = Callable[[LiveExecution, str, "dict[str, Any] | None"], ExecutionRecord]


@dataclass(frozen=True)
class Answer:
    """The call is done: hand `outcome` to the flow, and write `changes` and `logs` with it."""

    outcome: Outcome
    changes: dict[str, Any] = field(default_factory=dict)
    logs: tuple[LogRecord, ...] = ()


@dataclass(frozen=True)
class Wait:
    """The call cannot complete yet; the execution waits, holding no worker slot.

    It waits until `until`, or (None) until one of `children` ends and wakes it.
    """

    until: datetime | None
    children: tuple[str, ...] = ()


@dataclass(frozen=True)
class End:
    """The call ends the execution with `status`."""

    status: Status
    message: str | None


@dataclass(frozen=True)
class Restore:
    """The call restores the execution to `target`."""

    target: SavepointRecord


Result = Answer | Wait | End | Restore


@dataclass
class StepContext:
    """What a performer may use: the live execution, the store, connectors and the clock."""

    live: LiveExecution
    store: Store
    connectors: Connectors
    options: Options
    now: datetime
    start_child: ChildStarter

    @property
    def idempotency_key(self) -> str:
        """Stable across re-runs of this call, new for each restore of its savepoint.

        Execution id and savepoint id, plus how often that savepoint was restored once it
        was: a step run again after a crash sends the same key, a restore is a new attempt.
        """
        head = self.live.head
        if head is None:
            return f"{self.live.execution_id}:start"
        attempt = f":{head.restored}" if head.restored else ""
        return f"{self.live.execution_id}:{head.id}{attempt}"


Performer = Callable[..., Result]
PERFORMERS: dict[str, Performer] = {}
# The calls that change something outside the execution (an outside system, a child, a
# setting or file): a step confirms it still holds the execution before it performs one.
REACHING_OUT: set[str] = set()


def performer(name: str, reaches_out: bool = False) -> Callable[[Performer], Performer]:
    """Register the function performing the Flow-API call `name`.

    `reaches_out`: the call changes something outside the execution's own state, which its
    fenced commit cannot take back.
    """

    def register(function: Performer) -> Performer:
        PERFORMERS[name] = function
        if reaches_out:
            REACHING_OUT.add(name)
        return function

    return register


def perform(context: StepContext, call: Call) -> Result:
    """Perform `call`; a flowrt error becomes the call's error, raised at the flow's line."""
    function = PERFORMERS.get(call.name)
    if function is None:
        return Answer(Outcome(error=InvalidCallError(f"unknown Flow-API call {call.name!r}")))
    try:
        return function(context, *call.args, **call.kwargs)
    except FlowrtError as error:
        return Answer(Outcome(error=error))
    except TypeError as error:
        return Answer(Outcome(error=InvalidCallError(f"{call.describe()}: {error}")))


def _done(value: Any = None, **changes: Any) -> Answer:
    return Answer(Outcome(value=value), changes)


def _json(call: str, what: str, value: Any) -> Any:
    # flow_api checked what the flow hands in; this also guards what flowrt hands back.
    return check_json(call, what, value)


# --- the execution -------------------------------------------------------------------------------


@performer("connect", reaches_out=True)
def _connect(context: StepContext, name: str, **params: Any) -> Result:
    connector = context.connectors.get(name)
    try:
        return _done(connector.call(params, context.idempotency_key))
    except FlowrtError:
        raise
    except Exception as error:
        raise ConnectorError(f"connector {name!r}: {type(error).__name__}: {error}") from None


@performer("log")
def _log(context: StepContext, *parts: str) -> Result:
    live, call = context.live, context.live.pending
    line = call.line if call else 0
    seq = live.head.seq if live.head else 0
    record = LogRecord(live.execution_id, seq, line, context.now, " ".join(parts))
    return Answer(Outcome(), logs=(record,))


@performer("get")
def _get(context: StepContext, field: str) -> Result:
    live, state = context.live, context.live.state
    fields = {
        # Copies: the answer is the flow's to change, the execution's state is not.
        "input_value": lambda: copy.deepcopy(state.inputs),
        "output_value": lambda: copy.deepcopy(state.outputs),
        "status": lambda: live.status.value,
        "message": lambda: state.message,
        "id": lambda: live.execution_id,
        "name": lambda: state.flow_name,
    }
    if field not in fields:
        raise InvalidCallError(f"this.get({field!r}): the fields are {', '.join(fields)}")
    return _done(_json("get", field, fields[field]()))


@performer("pause")
def _pause(context: StepContext) -> Result:
    # Answered at once; the execution then stops, PAUSED, before its next call is performed.
    return _done(None, status=Status.PAUSED.value)


@performer("save")
def _save(context: StepContext, **fields: Any) -> Result:
    unknown = sorted(set(fields) - {"output_value", "message"})
    if unknown:
        raise InvalidCallError(f"this.save() takes output_value= and message=, not {unknown}")
    state = context.live.state
    outputs = fields.get("output_value", state.outputs)
    if not isinstance(outputs, dict):
        raise SerializationError(
            "save", f"output_value must be a dict, not {type(outputs).__name__}"
        )
    outputs = _json("save", "output_value", outputs)
    message = fields.get("message", state.message)
    message = None if message is None else str(message)
    return _done({"output_value": outputs, "message": message}, outputs=outputs, message=message)


@performer("success")
def _success(context: StepContext, message: str | None) -> Result:
    return End(Status.ENDED_SUCCESS, None if message is None else str(message))


@performer("error")
def _error(context: StepContext, message: str) -> Result:
    return End(Status.ENDED_ERROR, str(message))


@performer("sleep")
def _sleep(context: StepContext, seconds: float) -> Result:
    return _wait_until(context, context.now + timedelta(seconds=check_seconds("sleep", seconds)))


@performer("sleep_until")
def _sleep_until(context: StepContext, timestamp: float) -> Result:
    wake_s = check_wake("sleep_until", timestamp, context.now.timestamp())
    return _wait_until(context, datetime.fromtimestamp(wake_s, UTC))


def _wait_until(context: StepContext, until: datetime) -> Result:
    live = context.live
    if live.wake_at is not None:
        until = live.wake_at  # fixed when the wait began: a re-run step does not extend it
    if until <= context.now:
        return _done(None, status=Status.RUNNING.value, wake_at=None)
    return Wait(until)


# --- child executions ----------------------------------------------------------------------------

_CHILD_FIELDS = ("input_value", "output_value", "status", "message", "id", "name")


@performer("flow", reaches_out=True)
def _flow(context: StepContext, flow: str, inputs: Any, wait: bool) -> Result:
    if not isinstance(flow, str) or not flow:
        raise InvalidCallError("this.flow() needs a flow name or a path to a .py file")
    child = context.start_child(context.live, flow, inputs)
    if not wait:
        return _done(ChildRef(child.id, child.flow_name))
    return _wait_for(context, (child.id,), ReturnWhen.ALL_SUCCEEDED.value, single=True)


@performer("wait_for")
def _wait_for(
    context: StepContext, children: tuple[str, ...], return_when: str, single: bool = False
) -> Result:
    try:
        rule = ReturnWhen(return_when)
    except ValueError:
        choices = ", ".join(member.name for member in ReturnWhen)
        raise InvalidCallError(
            f"wait_for(return_when={return_when!r}): use system.return_when.{{{choices}}}"
        ) from None
    if not children:
        raise InvalidCallError("wait_for() needs at least one child execution")
    found = {record.id: record for record in context.store.get_executions(children)}
    records = []
    for child_id in children:
        record = found.get(child_id)
        if record is None or record.parent_id != context.live.execution_id:
            raise InvalidCallError(
                f"wait_for(): {child_id} is not a child of this execution; "
                "pass what this.flow(..., wait=False) returned"
            )
        records.append(record)
    ended = [record for record in records if record.status.ended]
    failed = [record for record in ended if record.status is not Status.ENDED_SUCCESS]
    if rule is ReturnWhen.ALL_SUCCEEDED and failed:
        child = failed[0]
        raise DependencyFailedError(child.id, child.flow_name, child.status.value, child.message)
    done = len(ended) == len(records) if rule is not ReturnWhen.FIRST_ENDED else bool(ended)
    if not done:
        return Wait(None, tuple(record.id for record in records if not record.status.ended))
    refs = [ChildRef(record.id, record.flow_name) for record in ended]
    return _done(refs[0] if single else refs, status=Status.RUNNING.value, wake_at=None)


@performer("child.get")
def _child_get(context: StepContext, child_id: str, field: str) -> Result:
    if field not in _CHILD_FIELDS:
        raise InvalidCallError(f"child.get({field!r}): the fields are {', '.join(_CHILD_FIELDS)}")
    found = context.store.get_executions([child_id])
    if not found:
        raise NotFoundError("execution", child_id, "it may have been deleted")
    record = found[0]
    value = {
        "input_value": record.inputs,
        "output_value": record.outputs,
        "status": record.status.value,
        "message": record.message,
        "id": record.id,
        "name": record.flow_name,
    }[field]
    return _done(value)


# --- savepoints ---------------------------------------------------------------------------------


@performer("save_dump")
def _save_dump(context: StepContext, name: str | None) -> Result:
    head = context.live.head
    assert head is not None, "save_dump is performed at its own savepoint"
    return _done(SavepointInfo(head.id, head.name, head.seq, head.line, head.restored))


@performer("load_dump")
def _load_dump(context: StepContext, ref: str, by: str) -> Result:
    live = context.live
    assert live.head is not None, "load_dump is performed at its own savepoint"
    if by == "id":
        target = context.store.get_savepoint(ref)
        if target is not None and target.execution_id != live.execution_id:
            raise ForeignSavepointError(live.execution_id, ref, target.execution_id)
    elif by == "name":
        target = context.store.find_named(live.head.id, ref)
    else:
        raise InvalidCallError(f"load_dump(by={by!r}): by must be 'id' or 'name'")
    if target is None:
        raise SavepointNotFoundError(live.execution_id, ref, by)
    # A loop is the flow coming back here again and again without getting further; restores
    # from outside, or after progress, do not count.
    returns = context.store.count_returns(live.head)
    if returns > context.options.max_restores:
        limit = context.options.max_restores
        raise RestoreLoopError(target.id, target.name, returns - 1, limit)
    return Restore(target)


# --- settings and files ---------------------------------------------------------------------------

_PRIMARY = {"setting": "value", "file": "content"}
_HINT = {
    "setting": "create it with `flowrt setting set NAME VALUE` or setting.save(value=...)",
    "file": "create it with file.save(content=...)",
}


def _record_calls(kind: str) -> None:
    primary = _PRIMARY[kind]

    @performer(f"{kind}.get")
    def _get_record(context: StepContext, name: str, field: str | None) -> Result:
        field = field or primary
        if field not in (primary, "name", "updated_at"):
            raise InvalidCallError(f"a {kind} has the fields {primary!r}, 'name', 'updated_at'")
        record = context.store.get_named(kind, name)
        if record is None:
            raise NotFoundError(kind, name, _HINT[kind])
        return _done({primary: record.value, "name": name, "updated_at": record.updated_at}[field])

    @performer(f"{kind}.save", reaches_out=True)
    def _save_record(context: StepContext, name: str, **fields: Any) -> Result:
        if set(fields) != {primary}:
            raise InvalidCallError(f"{kind}.save() takes {primary}= only, not {sorted(fields)}")
        value = fields[primary]
        if not (kind == "file" and isinstance(value, (bytes, bytearray))):
            value = _json(f"{kind}.save", primary, value)
        context.store.put_named(kind, name, value)
        return _done()

    @performer(f"{kind}.exists")
    def _exists(context: StepContext, name: str) -> Result:
        return _done(context.store.get_named(kind, name) is not None)

    @performer(f"{kind}.delete", reaches_out=True)
    def _delete(context: StepContext, name: str) -> Result:
        context.store.delete_named(kind, name)
        return _done()


_record_calls("setting")
_record_calls("file")

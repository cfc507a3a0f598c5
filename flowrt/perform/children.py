"""Calls on child executions: flow, wait_for, and get, load, run, wait, archive, delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flowrt.errors import DependencyFailedError, InvalidCallError, InvalidStateError, NotFoundError
from flowrt.flow_api import ChildRef, ReturnWhen
from flowrt.flow_api.children import check_limit, check_return_when
from flowrt.perform.base import Result, StepContext, Wait, done, performer
from flowrt.status import Status
from flowrt.storage.base import ExecutionRecord
from flowrt.storage.rows import is_uuid
from flowrt.values import check_name

_FIELDS: dict[str, Callable[[ExecutionRecord], Any]] = {
    "input_value": lambda r: r.inputs,
    "output_value": lambda r: r.outputs,
    "status": lambda r: r.status.value,
    "message": lambda r: r.message,
    "id": lambda r: r.id,
    "name": lambda r: r.display_name,
    "flow_name": lambda r: r.flow_name,
    "parent_id": lambda r: r.parent_id,
    "created_at": lambda r: r.created_at.isoformat(),
    "ended_at": lambda r: r.ended_at.isoformat() if r.ended_at else None,
}


@performer("flow", reaches_out=True)
def _flow(
    context: StepContext,
    flow: str,
    inputs: Any,
    wait: bool | str,
    name: str | None = None,
    run: bool = True,
) -> Result:
    if not isinstance(flow, str) or not flow:
        raise InvalidCallError("this.flow() needs a flow name or a path to a .py file")
    if name is not None:
        check_name("flow", "the execution name", name)
    child = context.start_child(context.live, flow, inputs, name=name, run=bool(run))
    if not run or wait is False:
        return done(_ref(child))
    rule = ReturnWhen.ALL_SUCCEEDED.value if wait is True else str(wait)
    return _wait_for(context, (child.id,), rule, single=True)


@performer("wait_for")
def _wait_for(
    context: StepContext, children: tuple[str, ...], return_when: str, single: bool = False
) -> Result:
    rule = check_return_when("wait_for", return_when)
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
        if _not_started(record):
            raise InvalidCallError(
                f"wait_for(): child {child_id} was created with run=False and has not been "
                "started, so it would never end; call child.run() or child.run_async() first"
            )
        records.append(record)
    ended = [record for record in records if record.status.ended]
    failed = [record for record in ended if record.status is not Status.ENDED_SUCCESS]
    if rule is ReturnWhen.ALL_SUCCEEDED and failed:
        child = failed[0]
        raise DependencyFailedError(child.id, child.flow_name, child.status.value, child.message)
    complete = len(ended) == len(records) if rule is not ReturnWhen.FIRST_ENDED else bool(ended)
    if not complete:
        return Wait(None, tuple(record.id for record in records if not record.status.ended))
    refs = [_ref(record) for record in ended]
    return done(refs[0] if single else refs, status=Status.RUNNING.value, wake_at=None)


@performer("child.wait")
def _child_wait(context: StepContext, child_id: str, return_when: str) -> Result:
    return _wait_for(context, (child_id,), return_when, single=True)


@performer("child.get")
def _child_get(context: StepContext, child_id: str, field: str) -> Result:
    return done(_read(context, child_id, (field,), "get")[0])


@performer("child.load")
def _child_load(context: StepContext, child_id: str, fields: tuple[str, ...]) -> Result:
    return done(_read(context, child_id, fields, "load"))


@performer("child.run", reaches_out=True)
def _child_run(context: StepContext, child_id: str) -> Result:
    _start(context, _own_child(context, child_id, "run"))
    return _wait_for(context, (child_id,), ReturnWhen.ALL_SUCCEEDED.value, single=True)


@performer("child.run_async", reaches_out=True)
def _child_run_async(context: StepContext, child_id: str) -> Result:
    return done(_ref(_start(context, _own_child(context, child_id, "run_async"))))


@performer("child.archive", reaches_out=True)
def _child_archive(context: StepContext, child_id: str) -> Result:
    child = _own_child(context, child_id, "archive")
    _check_ended(child, "archive")
    context.store.archive(child.id)
    return done()


@performer("child.delete", reaches_out=True)
def _child_delete(context: StepContext, child_id: str) -> Result:
    if not context.store.get_executions([child_id]):
        return done()  # deleted already: by this call, in a step that ran before a crash
    child = _own_child(context, child_id, "delete")
    _check_ended(child, "delete")
    try:
        context.store.delete_execution(child.id)
    except InvalidStateError as error:  # a grandchild, or a waiter for its message, not ended
        raise InvalidCallError(f"child.delete(): {error}; wait until it has ended") from None
    return done()


@performer("executions")
def _executions(context: StepContext, limit: int) -> Result:
    limit = check_limit("system.executions", limit)
    return done([_ref(record) for record in context.store.list_executions(limit)])


@performer("system.execution")
def _execution(context: StepContext, execution_id: str) -> Result:
    if not isinstance(execution_id, str) or not is_uuid(execution_id):
        raise InvalidCallError(f"system.execution({execution_id!r}): give the id of an execution")
    found = context.store.get_executions([execution_id])
    if not found:
        raise NotFoundError("execution", execution_id, "list them with system.executions()")
    return done(_ref(found[0]))


def _ref(record: ExecutionRecord) -> ChildRef:
    return ChildRef(record.id, record.flow_name)


def _not_started(record: ExecutionRecord) -> bool:
    return record.status is Status.PAUSED and record.head_id is None


def _read(context: StepContext, child_id: str, fields: tuple[str, ...], method: str) -> list[Any]:
    unknown = [field for field in fields if field not in _FIELDS]
    if unknown or not fields:
        raise InvalidCallError(
            f"child.{method}({', '.join(map(repr, fields))}): the fields are {', '.join(_FIELDS)}"
        )
    found = context.store.get_executions([child_id])
    if not found:
        raise NotFoundError("execution", child_id, "it may have been deleted")
    return [_FIELDS[field](found[0]) for field in fields]


def _own_child(context: StepContext, child_id: str, method: str) -> ExecutionRecord:
    found = context.store.get_executions([child_id])
    if not found:
        raise NotFoundError("execution", child_id, "it may have been deleted")
    if found[0].parent_id != context.live.execution_id:
        raise InvalidCallError(
            f"{method}(): execution {child_id} is not a child of this execution; a flow may "
            f"{method} only the children it started with this.flow()"
        )
    return found[0]


def _start(context: StepContext, child: ExecutionRecord) -> ExecutionRecord:
    assert context.run_child is not None, "a worker's step context can start children"
    return context.run_child(child)


def _check_ended(child: ExecutionRecord, method: str) -> None:
    if not child.status.ended:
        raise InvalidCallError(
            f"child.{method}(): child {child.id} is {child.status.value}; {method} it once it "
            "has ended (child.wait(return_when=system.return_when.ALL_ENDED) waits for that)"
        )

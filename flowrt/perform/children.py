"""Calls on child executions: flow, wait_for, child.get."""

from __future__ import annotations

from typing import Any

from flowrt.errors import DependencyFailedError, InvalidCallError, NotFoundError
from flowrt.flow_api import ChildRef, ReturnWhen
from flowrt.perform.base import Result, StepContext, Wait, done, performer
from flowrt.status import Status

_CHILD_FIELDS = ("input_value", "output_value", "status", "message", "id", "name")


@performer("flow", reaches_out=True)
def _flow(context: StepContext, flow: str, inputs: Any, wait: bool) -> Result:
    if not isinstance(flow, str) or not flow:
        raise InvalidCallError("this.flow() needs a flow name or a path to a .py file")
    child = context.start_child(context.live, flow, inputs)
    if not wait:
        return done(ChildRef(child.id, child.flow_name))
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
    complete = len(ended) == len(records) if rule is not ReturnWhen.FIRST_ENDED else bool(ended)
    if not complete:
        return Wait(None, tuple(record.id for record in records if not record.status.ended))
    refs = [ChildRef(record.id, record.flow_name) for record in ended]
    return done(refs[0] if single else refs, status=Status.RUNNING.value, wake_at=None)


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
    return done(value)

"""Calls on registered flows: system.flow(name) get, save, exists, delete, and system.flows()."""

from __future__ import annotations

from typing import Any

from flowrt.errors import InvalidCallError, NotFoundError
from flowrt.perform.base import Result, StepContext, done, existence_calls, performer
from flowrt.script import FLOW, register_flow
from flowrt.seals import check_flow

_FIELDS = ("script", "name", "updated_at")
_HINT = "register it with `flowrt flow set NAME PATH` or system.flow(NAME).save(script=...)"


@performer("flow.get")
def _flow_get(context: StepContext, name: str, fields: tuple[str, ...]) -> Result:
    unknown = [field for field in fields if field not in _FIELDS]
    if unknown:
        raise InvalidCallError(f"flow.get({unknown[0]!r}): a flow has the fields {_FIELDS}")
    record = context.store.get_named(FLOW, name)
    if record is None:
        raise NotFoundError("flow", name, _HINT)
    signer = context.signer
    assert signer is not None, "a worker's step context checks flows"
    values = []
    for field in fields:
        if field == "script":
            values.append(check_flow(signer, record))
        else:
            values.append(record.name if field == "name" else record.updated_at.isoformat())
    return done(values)


@performer("flow.save", reaches_out=True)
def _flow_save(context: StepContext, name: str, **fields: Any) -> Result:
    script = fields.pop("script", None)
    if fields or not isinstance(script, str):
        raise InvalidCallError("flow.save() takes script= only: the flow's source, a str")
    assert context.signer is not None, "a worker's step context signs flows"
    register_flow(context.store, context.signer, name, script)
    return done()


existence_calls("flow", FLOW)


@performer("flows")
def _flows(context: StepContext) -> Result:
    return done([record.name for record in context.store.list_named(FLOW)])

"""Calls on savepoints: save_dump, load_dump."""

from __future__ import annotations

from flowrt.errors import (
    ForeignSavepointError,
    InvalidCallError,
    RestoreLoopError,
    SavepointNotFoundError,
)
from flowrt.flow_api import SavepointInfo
from flowrt.perform.base import Restore, Result, StepContext, done, performer


@performer("save_dump")
def _save_dump(context: StepContext, name: str | None) -> Result:
    head = context.live.head
    assert head is not None, "save_dump is performed at its own savepoint"
    return done(SavepointInfo(head.id, head.name, head.seq, head.line, head.restored))


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

"""Calls on a setting's lock: acquire, waiting as WAITING while another execution holds it,
and release."""

from __future__ import annotations

from datetime import timedelta

from flowrt.errors import LockNotHeldError, LockTimeoutError, NotFoundError
from flowrt.perform.base import Result, StepContext, Wait, done, performer
from flowrt.status import Status
from flowrt.storage.locks import LOCK_PREFIX
from flowrt.values import check_name, check_seconds


@performer("setting.acquire", reaches_out=True)
def _acquire(context: StepContext, name: str, timeout_s: float | None) -> Result:
    check_name("setting.acquire", "the setting name", name)
    if timeout_s is not None:
        timeout_s = check_seconds("setting.acquire", timeout_s)
    live = context.live
    holder = context.store.acquire_lock(name, live.execution_id, context.now)
    if holder is None:
        return done(None)
    if timeout_s is None:
        return Wait(None, waits_on=LOCK_PREFIX + name)
    # The deadline is fixed when the wait begins: woken early, or its step run again, the
    # call waits for the rest of its timeout only.
    waiting = live.status is Status.WAITING and live.wake_at is not None
    deadline = live.wake_at if waiting else context.now + timedelta(seconds=timeout_s)
    assert deadline is not None
    if deadline <= context.now:
        raise LockTimeoutError(name, holder, timeout_s)
    return Wait(deadline, waits_on=LOCK_PREFIX + name)


@performer("setting.release", reaches_out=True)
def _release(context: StepContext, name: str, taken: bool = True) -> Result:
    """Free the lock if this execution holds it.

    `taken`: the flow took the lock, by its journal. Such a lock found free, or held by
    another execution, was given back by this very call before a crash made it run again:
    not an error. One the flow never took is an error unless this execution holds it (after
    a restore to before its `acquire`).
    """
    check_name("setting.release", "the setting name", name)
    if context.store.get_named("setting", name) is None:
        raise NotFoundError("setting", name, "a lock is taken with setting.acquire()")
    holder = context.store.release_lock(name, context.live.execution_id)
    if holder != context.live.execution_id and not taken:
        raise LockNotHeldError(name, holder)
    context.lock_freed(name)
    return done(None)

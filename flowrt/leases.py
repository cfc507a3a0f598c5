"""Leases: a worker renews what it holds, unloads what idles, and the reaper sends on the rest.

Every RUNNING or WAITING execution has someone answering for it until `lease_until`: the
worker named in `worker`, which renews the lease every third of it while the execution is
loaded there, or a step message on its way through a queue. When that time passes with no
progress (the worker died, a message was lost), the reaper, started by Celery beat, moves the
execution to a new version, so that anything the old holder still does is refused by the
fence, and sends its step to the shared queue, where any worker takes it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flowrt.clock import utc_now
from flowrt.live import LiveExecution, StopReason
from flowrt.status import Status
from flowrt.storage.base import ExecutionRecord

if TYPE_CHECKING:
    from flowrt.runtime import Runtime

log = logging.getLogger("flowrt")


@dataclass(frozen=True)
class ReapReport:
    """What one pass of the reaper did."""

    parents_due: int
    overdue: int
    resent: int
    quarantined: int = 0


def heartbeat(runtime: Runtime) -> None:
    """Renew the leases this worker holds; unload executions idle longer than sleep_max.

    A worker calls this every third of a lease. An execution whose lease it no longer
    holds (paused, cancelled, restored or taken over meanwhile) is unloaded, and its flow
    stopped if it is running its own code.
    """
    now, began, busy = utc_now(), time.monotonic(), runtime.live.busy()
    parked = [live for live in runtime.live.parked() if live.owned]
    # A step for this worker that is late may be behind others in its own queue; while
    # that queue delivers, it is on its way. When it stops (say, the broker restarted
    # empty), late ones were lost: their leases run out and the reaper sends them again.
    delivering = began - runtime.own_queue_stepped_at < runtime.options.lease_s
    # A step's commit renews its lease too: those with two thirds of it left can wait.
    renew_by = began + 2 * runtime.options.lease_s / 3
    held = {
        live.execution_id
        for live in parked
        if _holds_lease(live, began, delivering) and live.lease_deadline < renew_by
    }
    running = [(live, live.runs) for live in runtime.live.stepping() if live.running]
    kept = runtime.store.renew_leases(runtime.holder, held | busy, runtime.lease_until(now))
    for live, runs in running:
        # Its flow runs its own code, but the execution was cancelled, paused, restored or
        # taken over meanwhile: stop it now rather than when it next calls the Flow-API.
        if live.execution_id not in kept and live.running and live.runs == runs:
            live.stop(StopReason.TAKEN)
    idle_before = began - runtime.options.sleep_max_s
    # Before the next beat, the lease of a step given up for lost would run out.
    lapsing_by = began + runtime.options.lease_s / 3
    for live in parked:
        if live.execution_id in kept:
            live.lease_deadline = began + runtime.options.lease_s
        elif live.execution_id in held:
            runtime.live.forget(live)
        elif _waits_for_step(live) and live.lease_deadline > lapsing_by:
            continue
        elif _waits_for_step(live) or live.idle_since < idle_before:
            # Its step was lost, or it idled too long: unloaded, with no holder, the reaper
            # sends it on at once, and counts no crash for a worker that is alive.
            if runtime.live.forget(live):
                runtime.store.unload(live.execution_id, live.version, runtime.holder)


def release(runtime: Runtime) -> None:
    """This worker stops: hand every execution it holds to the reaper, unload them all."""
    runtime.store.release_worker(runtime.holder, utc_now())
    runtime.live.clear()


def reap(runtime: Runtime, backlog: int = 0, limit: int = 1000) -> ReapReport:
    """Send again the steps of executions nobody answers for; run by beat every second.

    Those are: running executions whose holder's lease expired (the worker died or its
    message was lost), sleeps that are due, parents with a child that ended, and waiters
    for a setting's lock that is free (their wake-up was lost). An
    execution whose step went to the shared queue and is `backlog` messages deep may
    still be on its way: of those whose queued lease expired, only the oldest beyond
    the queue's length are sent again.
    """
    now = utc_now()
    parents = runtime.store.wake_parents(now) + runtime.store.wake_lock_waiters(now)
    runtime.store.wake_answered(now)  # a response whose wake-up was lost
    overdue = runtime.store.overdue(now, limit)
    queued = [r for r in overdue if r.worker is None and r.lease_until is not None]
    chosen = [r.id for r in overdue if not (r.worker is None and r.lease_until is not None)]
    chosen += [r.id for r in queued[: max(len(queued) - backlog, 0)]]
    taken = runtime.store.take_over(chosen, now, runtime.lease_until(now))
    quarantined = 0
    for record in taken:
        if record.suspect_on is not None and record.crashes >= runtime.options.max_crashes:
            quarantined += quarantine(runtime, record)
        else:
            runtime.send(record, "resume" if record.status is Status.RUNNING else "wake")
    resent = len(taken) - quarantined
    if resent:
        log.info("reaper sent %d overdue executions on", resent)
    return ReapReport(parents, len(overdue), resent, quarantined)


def quarantine(runtime: Runtime, record: ExecutionRecord) -> bool:
    """End an execution that killed its worker `crashes` times at one savepoint ENDED_ERROR.

    Its savepoints stay: once the cause is fixed, restore it. True if it was ended here.
    """
    head = runtime.store.get_savepoint(record.head_id) if record.head_id else None
    where = (
        f"performing its call at line {head.line} ({head.call}) or running the code after it"
        if head is not None
        else "running its code before its first Flow-API call"
    )
    message = (
        f"quarantined: its worker died {record.crashes} times (FLOWRT_MAX_CRASHES="
        f"{runtime.options.max_crashes}) while {where}; it is not handed to another worker. "
        "Fix the cause (os._exit, a crash in C code, memory), then restore it"
    )
    log.error("execution %s %s", record.id, message)
    line = head.line if head is not None else None
    return runtime._end_error(record.version, record.id, message, None, line)


def _waits_for_step(live: LiveExecution) -> bool:
    # A parked execution waits for a step this worker sent itself: its next call, or the
    # end of a short sleep. One waiting for children is woken by them instead.
    return live.status is Status.RUNNING or live.wake_at is not None


def _holds_lease(live: LiveExecution, now: float, delivering: bool) -> bool:
    # Renewed only while that step may still come: a lost one must not be covered forever.
    return _waits_for_step(live) and (now < live.step_expected_by or delivering)

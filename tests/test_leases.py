"""Leases, the reaper and routing, driven by hand: two runtimes share one store, as two workers.

Each test delivers step messages itself (`Recorder`), so it can lose one, deliver one twice,
or hand it to the other worker, and then run the reaper or a heartbeat where it wants.
"""

from __future__ import annotations

import textwrap
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from conftest import SECRET, Recorder, wait_until

from flowrt import leases
from flowrt.options import Options
from flowrt.runtime import Runtime
from flowrt.seals import sign_flow
from flowrt.status import Status
from flowrt.storage import SqlStore
from flowrt.storage.schema import executions

LEASE_S = 0.3

STEPS = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        total = 0
        for i in range(4):
            total += this.get('input_value')['n']
        this.save(output_value={'total': total})
""")

SLEEPER = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        this.log('before')
        this.sleep(this.get('input_value')['seconds'])
        this.save(output_value={'woke': True})
""")

CHILD = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        this.save(output_value={'child': this.get('input_value')['k']})
""")


class Workers:
    """Two runtimes on one store, each with its own recorded messages."""

    def __init__(self, store: SqlStore, **options: object) -> None:
        self.store = store
        self.recorder = Recorder()
        opts = Options(secret=SECRET.encode(), lease_s=LEASE_S, sleep_max_s=0.5, **options)
        self.w1 = Runtime(store, opts, self.recorder, worker="w1@test")
        self.w2 = Runtime(store, opts, self.recorder, worker="w2@test")

    def run(self, runtime: Runtime, limit: int = 100) -> None:
        """Deliver every message on `runtime` until none is left."""
        for _ in range(limit):
            if not self.recorder.sent:
                return
            self.recorder.deliver(runtime)
        raise AssertionError("the execution kept sending steps")

    def run_routed(self, shared: Runtime, limit: int = 200) -> None:
        """Deliver every message to the worker it names, those for the shared queue to `shared`."""
        named = {self.w1.worker: self.w1, self.w2.worker: self.w2}
        for _ in range(limit):
            if not self.recorder.sent:
                return
            _, worker = self.recorder.sent[0]
            self.recorder.deliver(named.get(worker, shared))
        raise AssertionError("the executions kept sending steps")

    def close(self) -> None:
        self.w1.close()
        self.w2.close()


@pytest.fixture
def workers(store: SqlStore):
    pair = Workers(store)
    yield pair
    pair.close()


def _expire(store: SqlStore, execution_id: str, **values: object) -> None:
    """Move an execution's lease (and any other column) as if time had passed."""
    past = datetime.now(UTC) - timedelta(seconds=60)
    values = {"lease_until": past, **values}
    with store.engine.begin() as conn:
        conn.execute(executions.update().where(executions.c.id == execution_id).values(values))


def _now() -> datetime:
    return datetime.now(UTC)


def _seqs(store: SqlStore, execution_id: str) -> list[int]:
    return [sp.seq for sp in store.list_savepoints(execution_id)]


def test_a_step_lost_after_its_commit_is_sent_again_by_the_reaper_once_the_lease_expires(workers):
    record = workers.w1.start("steps", STEPS, {"n": 3})
    workers.recorder.deliver(workers.w1)
    workers.recorder.deliver(workers.w1)
    workers.recorder.sent.clear()  # the worker died after its commit: the next step is lost
    workers.recorder.etas.clear()
    before = workers.store.get_execution(record.id)
    assert before.worker == "w1@test" and before.lease_until is not None

    assert leases.reap(workers.w2).resent == 0  # the lease still holds: nobody steps in
    wait_until(lambda: leases.reap(workers.w2).resent == 1, 5, "the reaper to resend the step")
    ((ticket, worker),) = workers.recorder.sent
    assert worker is None and ticket.version == before.version + 1  # shared queue, new version
    workers.run(workers.w2)

    final = workers.store.get_execution(record.id)
    assert final.status is Status.ENDED_SUCCESS and final.outputs == {"total": 12}
    assert _seqs(workers.store, record.id) == [1, 2, 3, 4, 5]


def test_a_worker_whose_lease_lapsed_performs_nothing_once_the_reaper_moved_the_execution(
    workers,
):
    record = workers.w1.start("steps", STEPS, {"n": 1})
    workers.recorder.deliver(workers.w1)
    ((zombie, _),) = workers.recorder.sent  # w1 stalls with its next step in its own queue
    workers.recorder.sent.clear()
    workers.recorder.etas.clear()
    # Time passes with no heartbeat: the lease runs out, in the database and for w1.
    wait_until(lambda: leases.reap(workers.w2).resent == 1, 5, "the reaper to take it over")

    workers.w1.step(zombie.execution_id, zombie.version, zombie.head_id)  # w1 wakes up
    assert workers.w1.stats["claims_refused"] == 1
    assert _seqs(workers.store, record.id) == [1]  # it stored nothing
    workers.run(workers.w2)
    assert workers.store.get_execution(record.id).outputs == {"total": 4}


def test_a_duplicate_step_is_refused_by_a_worker_while_another_holds_the_lease(workers):
    record = workers.w1.start("steps", STEPS, {"n": 1})
    ((first, _),) = workers.recorder.sent
    workers.recorder.deliver(workers.w1)
    # The same start message again, as a broker might redeliver it, lands on w2.
    workers.w2.step(first.execution_id, first.version, first.head_id)
    assert workers.w2.stats["claims_refused"] == 1
    assert _seqs(workers.store, record.id) == [1]
    workers.run(workers.w1)
    assert workers.store.get_execution(record.id).status is Status.ENDED_SUCCESS


def test_the_reaper_leaves_queued_steps_alone_while_the_queue_may_still_hold_them(workers):
    started = [workers.w1.start("steps", STEPS, {"n": 1}) for _ in range(3)]
    for record in started:
        _expire(workers.store, record.id)  # their start messages waited past their lease
    workers.recorder.sent.clear()
    workers.recorder.etas.clear()
    assert leases.reap(workers.w1, backlog=3).resent == 0  # three messages queued: all there
    report = leases.reap(workers.w1, backlog=1)  # one queued: two of them were lost
    assert report.overdue == 3 and report.resent == 2
    assert leases.reap(workers.w1, backlog=1).resent == 0  # resent ones hold fresh leases
    assert leases.reap(workers.w1, backlog=0).resent == 1  # the queue drained: it was lost too


def test_the_next_step_goes_to_the_holding_worker_until_it_has_too_many_queued(store):
    pair = Workers(store, sticky_max=2)
    try:
        records = [pair.w1.start("steps", STEPS, {"n": 1}) for _ in range(3)]
        for _ in records:
            pair.recorder.deliver(pair.w1)  # each start parks at its first call
        routes = [worker for _, worker in pair.recorder.sent]
        assert routes == ["w1@test", "w1@test", None]  # the third overflows to the shared queue
        overflow = store.get_execution(records[2].id)
        assert overflow.worker is None and overflow.lease_until is not None
        pair.run_routed(pair.w2)  # the least busy worker takes the shared one: it replays
        assert all(store.get_execution(r.id).outputs == {"total": 4} for r in records)
        assert pair.w2.stats["loads"] >= 1
    finally:
        pair.close()


def test_a_long_sleep_is_unloaded_with_no_delayed_message_and_woken_by_the_reaper(workers):
    record = workers.w1.start("sleeper", SLEEPER, {"seconds": 3600})
    workers.run(workers.w1)  # log, get, then the sleep: nothing is left to deliver
    waiting = workers.store.get_execution(record.id)
    assert waiting.status is Status.WAITING and waiting.worker is None
    assert waiting.wake_at > datetime.now(UTC) + timedelta(seconds=3500)
    assert workers.recorder.sent == [] and workers.w1.live.parked() == []
    assert leases.reap(workers.w2).resent == 0  # not due yet

    _expire(workers.store, record.id, wake_at=datetime.now(UTC) - timedelta(seconds=1))
    assert leases.reap(workers.w2).resent == 1  # an hour later, as far as the row knows
    workers.run(workers.w2)
    final = workers.store.get_execution(record.id)
    assert final.status is Status.ENDED_SUCCESS and final.outputs == {"woke": True}


def test_a_short_sleep_stays_loaded_and_sends_its_step_to_its_worker_for_when_it_ends(workers):
    record = workers.w1.start("sleeper", SLEEPER, {"seconds": 0.2})
    for _ in range(4):  # start, log, get, sleep
        workers.recorder.deliver(workers.w1)
    ((ticket, worker),) = workers.recorder.sent
    assert worker == "w1@test" and workers.recorder.etas[0] is not None
    waiting = workers.store.get_execution(record.id)
    assert waiting.status is Status.WAITING and waiting.worker == "w1@test"
    loads = workers.w1.stats["loads"]
    wait_until(lambda: datetime.now(UTC) >= waiting.wake_at, 5, "the sleep to end")
    workers.run(workers.w1)
    assert workers.w1.stats["loads"] == loads  # woke from memory, no replay
    assert workers.store.get_execution(record.id).outputs == {"woke": True}


def test_the_heartbeat_renews_held_leases_and_unloads_a_parent_idle_past_sleep_max(workers):
    signature = sign_flow(workers.w1.journal.signer, "child", CHILD)
    workers.store.put_named("flow", "child", {"source": CHILD}, signature)
    parent = textwrap.dedent("""
        import flow_api

        def handler(system, this):
            child = this.flow('child', inputs={'k': 7})
            this.save(output_value=child.get('output_value'))
    """)
    record = workers.w1.start("parent", parent, {})
    workers.recorder.deliver(workers.w1)  # the parent parks at this.flow
    workers.recorder.deliver(workers.w1)  # this.flow starts the child and waits for it
    ((child_ticket, _),) = workers.recorder.sent
    workers.recorder.sent.clear()
    workers.recorder.etas.clear()
    waiting = workers.store.get_execution(record.id)
    assert waiting.status is Status.WAITING and waiting.worker == "w1@test"

    wait_until(lambda: (leases.heartbeat(workers.w1), not workers.w1.live.parked())[1], 5)
    assert workers.store.get_execution(record.id).worker is None  # unloaded after sleep_max

    workers.w2.step(child_ticket.execution_id, child_ticket.version, child_ticket.head_id)
    workers.run(workers.w2)  # the child ends, wakes its parent on the shared queue
    final = workers.store.get_execution(record.id)
    assert final.status is Status.ENDED_SUCCESS and final.outputs == {"child": 7}


def test_a_heartbeat_renews_a_lease_while_the_step_may_come_and_lets_a_lost_one_go(workers):
    record = workers.w1.start("steps", STEPS, {"n": 1})
    workers.recorder.deliver(workers.w1)  # its next step is on its way to w1's own queue
    first = workers.store.get_execution(record.id).lease_until
    # Its commit took a lease; the heartbeat renews it once a third of it has gone.
    wait_until(
        lambda: (
            (leases.heartbeat(workers.w1), workers.store.get_execution(record.id))[1].lease_until
            > first
        ),
        5,
        "the heartbeat to renew the lease",
    )
    assert leases.reap(workers.w2).resent == 0
    # The step never comes (the broker lost it): w1 stops renewing, the reaper sends it on.
    wait_until(lambda: (leases.heartbeat(workers.w1), leases.reap(workers.w2).resent)[1], 5)
    workers.recorder.sent.pop(0)  # the lost message
    workers.recorder.etas.pop(0)
    workers.run(workers.w2)
    assert workers.store.get_execution(record.id).outputs == {"total": 4}


def test_a_lost_step_of_a_live_worker_is_sent_on_without_counting_a_crash(workers):
    record = workers.w1.start("steps", STEPS, {"n": 1})
    workers.recorder.deliver(workers.w1)  # its next step is on its way to w1's own queue
    workers.recorder.sent.pop(0)  # ... and the broker loses it
    workers.recorder.etas.pop(0)
    wait_until(lambda: (leases.heartbeat(workers.w1), leases.reap(workers.w2).resent)[1], 5)
    assert workers.store.get_execution(record.id).crashes == 0  # w1 is alive: no suspect
    workers.run(workers.w2)
    assert workers.store.get_execution(record.id).outputs == {"total": 4}


def test_a_dead_holder_counts_a_crash_that_progress_resets(workers):
    record = workers.w1.start("steps", STEPS, {"n": 1})
    workers.recorder.deliver(workers.w1)
    workers.recorder.sent.clear()  # w1 died after its commit: no heartbeat, no step
    workers.recorder.etas.clear()
    wait_until(lambda: leases.reap(workers.w2).resent == 1, 5, "the reaper to take it over")
    taken = workers.store.get_execution(record.id)
    assert taken.crashes == 1 and taken.suspect_on is None  # w1 held others: not attributed
    workers.recorder.deliver(workers.w2)  # its next step runs alone on w2, and gets on
    after = workers.store.get_execution(record.id)
    assert after.crashes == 0 and after.suspect_on is None
    workers.run(workers.w2)
    assert workers.store.get_execution(record.id).status is Status.ENDED_SUCCESS


def test_a_death_while_a_suspect_runs_alone_is_its_own_and_quarantines_it_at_the_limit(store):
    pair = Workers(store, max_crashes=2)
    try:
        record = pair.w1.start("steps", STEPS, {"n": 1})
        pair.recorder.deliver(pair.w1)
        pair.recorder.sent.clear()  # w1 dies
        pair.recorder.etas.clear()
        wait_until(lambda: leases.reap(pair.w2).resent == 1, 5, "the first takeover")
        ticket, _ = pair.recorder.sent.pop(0)
        pair.recorder.etas.pop(0)
        # w2 takes the suspect, marks it as running alone, and dies during its step.
        claimed = store.claim(record.id, ticket.version, "w2@test", _now(), _now())
        assert claimed is not None and claimed.crashes == 1
        assert store.mark_suspect(record.id, ticket.version, "w2@test")
        report = leases.reap(pair.w1)
        assert report.quarantined == 1 and report.resent == 0
        final = store.get_execution(record.id)
        assert final.status is Status.ENDED_ERROR
        assert "died 2 times (FLOWRT_MAX_CRASHES=2)" in (final.message or "")
        assert (
            final.error_line
            == STEPS.splitlines().index("        total += this.get('input_value')['n']") + 1
        )
        assert pair.recorder.sent == []  # not handed to another worker
    finally:
        pair.close()


def test_a_handed_over_execution_counts_no_crash(workers):
    record = workers.w1.start("steps", STEPS, {"n": 1})
    workers.recorder.deliver(workers.w1)
    workers.recorder.sent.clear()
    workers.recorder.etas.clear()
    leases.release(workers.w1)  # SIGTERM: a handover, not a death
    assert leases.reap(workers.w2).resent == 1
    assert workers.store.get_execution(record.id).crashes == 0


def test_a_stopping_worker_hands_its_executions_to_the_reaper_at_once(workers):
    running = workers.w1.start("steps", STEPS, {"n": 1})
    workers.recorder.deliver(workers.w1)
    workers.recorder.sent.clear()  # its next step waits in w1's own queue, lost with w1
    workers.recorder.etas.clear()
    sleeping = workers.w1.start("sleeper", SLEEPER, {"seconds": 0.3})
    for _ in range(4):  # start, log, get, sleep
        workers.recorder.deliver(workers.w1)
    workers.recorder.sent.clear()
    workers.recorder.etas.clear()
    leases.release(workers.w1)
    assert workers.w1.live.parked() == []
    assert workers.store.get_execution(sleeping.id).worker is None
    assert leases.reap(workers.w2).resent == 1  # the running one, without waiting its lease
    workers.run(workers.w2)
    wait_until(lambda: leases.reap(workers.w2).resent == 1, 5, "the sleep to fall due")
    workers.run(workers.w2)
    for record in (running, sleeping):
        assert workers.store.get_execution(record.id).status is Status.ENDED_SUCCESS


def test_pausing_an_execution_unloads_it_from_the_worker_within_a_lease(workers):
    record = workers.w1.start("steps", STEPS, {"n": 1})
    workers.recorder.deliver(workers.w1)
    assert [live.execution_id for live in workers.w1.live.parked()] == [record.id]
    workers.w1.pause(record.id)
    wait_until(lambda: (leases.heartbeat(workers.w1), workers.w1.live.parked())[1] == [], 5)
    workers.run(workers.w1)  # the step already sent finds a newer version: nothing happens
    assert _seqs(workers.store, record.id) == [1]
    assert workers.store.get_execution(record.id).status is Status.PAUSED


def test_a_claim_is_refused_for_a_moved_version_and_while_another_lease_holds(store):
    record = store.create_execution("f", "s", {})
    now = datetime.now(UTC)
    later = now + timedelta(seconds=30)
    assert store.claim(record.id, 1, "w1", now, later) is None  # wrong version
    claimed = store.claim(record.id, 0, "w1", now, later)
    assert claimed is not None and claimed.worker == "w1" and claimed.lease_until == later
    assert store.claim(record.id, 0, "w2", now, later) is None  # w1's lease holds
    assert store.claim(record.id, 0, "w2", later + timedelta(seconds=1), later) is not None
    assert store.renew_leases("w1", [record.id], later) == set()  # w2 holds it now
    assert store.renew_leases("w2", [record.id, "not-an-id-at-all"], later) == {record.id}


def test_take_over_moves_only_executions_that_are_still_overdue(store):
    due = store.create_execution("f", "s", {})
    held = store.create_execution("f", "s", {})
    now = datetime.now(UTC)
    store.claim(held.id, 0, "w1", now, now + timedelta(seconds=30))
    overdue = store.overdue(now + timedelta(seconds=1), 10)
    assert [r.id for r in overdue] == [due.id]  # never leased: first in line
    taken = store.take_over([due.id, held.id], now, now + timedelta(seconds=5))
    assert [(r.id, r.version, r.worker) for r in taken] == [(due.id, 1, None)]
    assert store.take_over([due.id], now, now) == []  # it holds a fresh lease now
    with store.engine.begin() as conn:
        versions = dict(conn.execute(sa.select(executions.c.id, executions.c.version)).all())
    assert versions == {due.id: 1, held.id: 0}


def test_a_restore_from_inside_leaves_the_execution_to_whichever_worker_takes_its_step(
    workers,
):
    source = textwrap.dedent("""
        import flow_api

        def handler(system, this):
            point = this.save_dump('p')
            if point.restored == 0:
                this.load_dump('p', by='name')
            this.save(output_value={'restored': point.restored})
    """)
    record = workers.w1.start("again", source, {})
    workers.recorder.deliver(workers.w1)  # parks at save_dump, its step for w1
    workers.run_routed(shared=workers.w2)  # the restore's step goes to the shared queue
    final = workers.store.get_execution(record.id)
    assert final.status is Status.ENDED_SUCCESS and final.outputs == {"restored": 1}
    assert workers.w2.stats["claims_refused"] == 0 and workers.w2.stats["loads"] == 1


class _StepsAtOnce:
    """A dispatcher that runs each step on a thread of its own as soon as it is sent."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self.threads: list[threading.Thread] = []

    def enqueue_step(self, ticket, *, worker=None, eta=None) -> None:
        assert self.runtime is not None
        args = (ticket.execution_id, ticket.version, ticket.head_id)
        thread = threading.Thread(target=self.runtime.step, args=args, daemon=True)
        self.threads.append(thread)
        thread.start()


def test_the_step_that_loaded_an_execution_does_not_hide_the_next_one_from_the_heartbeat(store):
    # The next step can begin while the one that loaded the execution is still returning;
    # it must stay among the busy ones, whose leases the heartbeat renews.
    dispatcher = _StepsAtOnce()
    runtime = Runtime(store, Options(secret=SECRET.encode(), lease_s=5), dispatcher, "w@test")
    dispatcher.runtime = runtime
    flow = textwrap.dedent("""
        import time
        import flow_api

        def handler(system, this):
            this.log('first')
            time.sleep(1.5)  # the second step waits here while the test looks
            this.save(output_value={'done': True})
    """)
    try:
        record = runtime.start("sleepy", flow)
        wait_until(lambda: len(dispatcher.threads) >= 2, 10, "the second step to begin")
        dispatcher.threads[0].join(10)  # the loading step has returned
        wait_until(lambda: runtime.live.stepping(), 5, "the second step to hold its flow")
        assert record.id in runtime.live.busy()
        wait_until(lambda: store.get_execution(record.id).status.ended, 30, "the end")
    finally:
        runtime.close()

"""Setting locks: `setting.acquire()` and `release()`, on SQLite and PostgreSQL, in flows run by
workers; never two holders, waiters hold no worker slot, ends and cancels give locks back."""

from __future__ import annotations

import textwrap
import threading

import pytest
import sqlalchemy as sa
from conftest import SECRET, Recorder, assert_refused, run_flow, wait_until, write_flow

import flowrt
from flowrt.clock import utc_now
from flowrt.options import Options
from flowrt.runtime import Runtime
from flowrt.status import Status
from flowrt.storage import open_store
from flowrt.storage.base import StepCommit
from flowrt.storage.schema import named

# --- the store: one holder, taken atomically --------------------------------------------------


def _execution(store, name: str = "f") -> str:
    return store.create_execution(name, "def handler(system, this): pass", {}).id


def _row_holder(store, name: str) -> str | None:
    """The holder the setting's row names, ended or not (`lock_holder` skips ended ones)."""
    query = sa.select(named.c.holder).where(named.c.kind == "setting", named.c.name == name)
    with store.engine.begin() as conn:
        return conn.scalar(query)


def _given_back(store, name: str) -> None:
    """Wait for the end of its holder to clear the row (just after the end is stored)."""
    wait_until(lambda: _row_holder(store, name) is None, 30, f"the lock {name!r} given back")


def _wait_for_lock(store, execution_id: str, name: str, wake_at=None) -> None:
    version = store.get_execution(execution_id).version
    changes = {"status": Status.WAITING.value, "wake_at": wake_at, "waits_on": f"lock:{name}"}
    assert store.commit_step(StepCommit(execution_id, version, changes))


def test_acquire_creates_a_missing_setting_and_refuses_a_second_holder_until_release(store):
    first, second = _execution(store), _execution(store)
    assert store.get_named("setting", "deploy") is None
    assert store.acquire_lock("deploy", first, utc_now()) is None
    assert store.get_named("setting", "deploy").value is None  # created, with no value
    assert store.acquire_lock("deploy", second, utc_now()) == first
    assert store.acquire_lock("deploy", first, utc_now()) is None  # the holder again: kept
    assert store.lock_holder("deploy") == first
    assert store.release_lock("deploy", second) == first  # not the holder: refused
    assert store.lock_holder("deploy") == first
    assert store.release_lock("deploy", first) == first  # it held it: freed now
    assert store.release_lock("deploy", first) is None  # free
    assert store.lock_holder("deploy") is None
    assert store.acquire_lock("deploy", second, utc_now()) is None
    assert store.lock_holder("deploy") == second


def test_a_lock_keeps_the_setting_value_and_saving_the_value_keeps_the_lock(store):
    holder = _execution(store)
    store.put_named("setting", "config", {"region": "eu"})
    assert store.acquire_lock("config", holder, utc_now()) is None
    assert store.get_named("setting", "config").value == {"region": "eu"}
    store.put_named("setting", "config", {"region": "us"})
    assert store.lock_holder("config") == holder


def test_a_lock_whose_holder_ended_or_vanished_is_free(store):
    ended, other = _execution(store), _execution(store)
    assert store.acquire_lock("l", ended, utc_now()) is None
    store.cancel(ended, utc_now())  # its release was lost: the lock is free all the same
    assert store.lock_holder("l") is None
    assert store.acquire_lock("l", other, utc_now()) is None
    assert store.lock_holder("l") == other
    store.cancel(other, utc_now())
    ghost = "00000000-0000-4000-8000-000000000000"  # an execution that does not exist
    assert store.acquire_lock("l", ghost, utc_now()) is None
    assert store.acquire_lock("l", _execution(store), utc_now()) is None


def test_release_locks_frees_every_lock_of_an_execution_and_only_those(store):
    mine, theirs = _execution(store), _execution(store)
    for name in ("b", "a"):
        assert store.acquire_lock(name, mine, utc_now()) is None
    assert store.acquire_lock("c", theirs, utc_now()) is None
    assert store.release_locks(mine) == ["a", "b"]
    assert store.release_locks(mine) == []
    assert (store.lock_holder("a"), store.lock_holder("c")) == (None, theirs)
    assert store.release_locks("not-a-uuid") == []


def test_the_reaper_pass_wakes_waiters_of_a_free_lock_only(store):
    holder, waiter, timed = _execution(store), _execution(store), _execution(store)
    assert store.acquire_lock("l", holder, utc_now()) is None
    _wait_for_lock(store, waiter, "l")
    deadline = utc_now().replace(year=utc_now().year + 1)
    _wait_for_lock(store, timed, "l", wake_at=deadline)
    assert [r.id for r in store.list_lock_waiters("l")] == [waiter, timed]
    assert store.wake_lock_waiters(utc_now()) == 0  # the lock is held
    store.release_lock("l", holder)
    assert store.wake_lock_waiters(utc_now()) == 1  # the timed one tries at its deadline
    assert store.get_execution(waiter).wake_at is not None
    assert store.get_execution(timed).wake_at == deadline
    assert store.wake_lock_waiters(utc_now()) == 0  # already due


def test_the_reaper_pass_wakes_the_waiter_of_a_lock_whose_holder_ended(store):
    holder, waiter = _execution(store), _execution(store)
    assert store.acquire_lock("l", holder, utc_now()) is None
    _wait_for_lock(store, waiter, "l")
    store.cancel(holder, utc_now())
    assert store.wake_lock_waiters(utc_now()) == 1


@pytest.mark.postgres
def test_executions_racing_for_a_lock_on_postgresql_never_both_get_it(pg_clean):
    store = open_store(pg_clean)
    contenders = 8
    try:
        ids = [_execution(store) for _ in range(contenders)]

        def contend(execution_id: str, barrier: threading.Barrier, won: list[str]) -> None:
            barrier.wait()
            if store.acquire_lock("race", execution_id, utc_now()) is None:
                won.append(execution_id)

        for round_ in range(25):
            barrier = threading.Barrier(contenders)
            won: list[str] = []
            threads = [threading.Thread(target=contend, args=(i, barrier, won)) for i in ids]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            assert len(won) == 1, (round_, won)
            if round_ % 3 == 2:  # the holder ends instead of releasing: the lock is free
                store.cancel(won[0], utc_now())
                ids[ids.index(won[0])] = _execution(store)
            else:
                assert store.release_lock("race", won[0]) == won[0]
    finally:
        store.close()


# --- flows: edges first -----------------------------------------------------------------------


BAD_CALLS = """
    import flow_api

    def handler(system, this):
        caught = {}
        for label, call in [
            ('negative', lambda: system.setting('l').acquire(timeout=-1)),
            ('nan', lambda: system.setting('l').acquire(timeout=float('nan'))),
            ('text', lambda: system.setting('l').acquire(timeout='soon')),
            ('name', lambda: system.setting(5).acquire()),
            ('empty', lambda: system.setting('').release()),
            ('missing', lambda: system.setting('never-made').release()),
        ]:
            try:
                call()
            except flow_api.FlowApiError as error:
                caught[label] = [type(error).__name__, str(error)]
        this.save(output_value=caught)
"""


def test_bad_acquire_and_release_arguments_raise_catchable_errors_and_change_nothing(
    client, tmp_path
):
    handle = run_flow(client, tmp_path, BAD_CALLS)
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert_refused(
        handle.outputs,
        {
            "negative": ("InvalidCallError", "must not be negative"),
            "nan": ("InvalidCallError", "finite"),
            "text": ("InvalidCallError", "must be a number"),
            "name": ("InvalidCallError", "must be a str"),
            "empty": ("InvalidCallError", "must not be empty"),
            "missing": ("NotFoundError", "never-made"),
        },
    )
    assert client.list_named("setting") == []  # nothing was created by refused calls
    calls = [sp.call for sp in handle.savepoints()]
    assert "setting.acquire" not in calls  # refused before any savepoint


HOLDER = """
    import flow_api

    def handler(system, this):
        system.setting('gate').acquire()
        system.setting('gate').acquire()  # held already: returns at once
        system.setting('gate-progress').save(value='held')
        this.sleep(this.get('input_value').get('hold', 3600))
        system.setting('gate').release()
        return this.success('released')
"""

WAITER = """
    import flow_api

    def handler(system, this):
        timeout = this.get('input_value').get('timeout')
        try:
            system.setting('gate').acquire(timeout=timeout)
        except flow_api.LockTimeoutError as error:
            this.save(output_value={'timed_out': str(error)})
            return this.success('gave up')
        this.save(output_value={'got': True})
        system.setting('gate').release()
"""


def _holding(client, tmp_path, hold_s: float = 3600, name: str = "holder"):
    holder = run_flow(client, tmp_path, HOLDER, name, {"hold": hold_s}, timeout_s=0)
    wait_until(lambda: client.get_setting("gate-progress") == "held", 30, "the holder")
    return holder


def test_a_waiter_waits_as_waiting_until_the_holder_releases(client, tmp_path):
    holder = _holding(client, tmp_path, hold_s=2)
    waiter = run_flow(client, tmp_path, WAITER, "waiter", timeout_s=0)
    wait_until(lambda: waiter.status is Status.WAITING, 30, "the waiter to wait")
    assert waiter.record().waits_on == "lock:gate"
    assert holder.wait(30).status is Status.ENDED_SUCCESS, holder.record().error
    assert waiter.wait(30).status is Status.ENDED_SUCCESS
    assert waiter.outputs == {"got": True} and waiter.record().waits_on is None
    _given_back(client.store, "gate")


def test_taking_a_lock_twice_keeps_it_and_releasing_one_not_taken_is_an_error(client, tmp_path):
    handle = run_flow(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            lock = system.setting('gate')
            lock.acquire()
            lock.acquire(timeout=0)  # held by this execution already: no wait, no timeout
            lock.release()
            try:
                lock.release()  # a lock is not counted: it was given back already
            except flow_api.LockNotHeldError as error:
                this.save(message=str(error))
            lock.acquire(0)
        """,
    )
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert "nobody holds it" in handle.record().message
    calls = [sp.call for sp in handle.savepoints()]
    assert calls[:4] == ["setting.acquire"] * 2 + ["setting.release"] * 2
    _given_back(client.store, "gate")  # its end gave it back


@pytest.fixture
def by_hand(tmp_path):
    """A runtime whose step messages the test delivers itself, on a SQLite store."""
    store = open_store(f"sqlite:///{tmp_path / 'rt.db'}")
    recorder = Recorder()
    runtime = Runtime(store, Options(secret=SECRET.encode()), recorder, worker="w1")
    yield store, recorder, runtime
    runtime.close()
    store.close()


def _deliver_all(recorder, runtime) -> None:
    while recorder.sent:
        recorder.deliver(runtime)


def test_a_release_run_again_after_its_worker_died_is_no_error(by_hand, monkeypatch):
    store, recorder, runtime = by_hand
    source = """
    import flow_api

    def handler(system, this):
        system.setting('gate').acquire()
        system.setting('gate').release()
        return this.success('released')
    """
    record = runtime.start("releaser", textwrap.dedent(source))
    recorder.deliver(runtime)  # parks at acquire
    recorder.deliver(runtime)  # takes the lock, parks at release
    ticket, _ = recorder.sent[0]
    real_commit = store.commit_step

    def die_before_storing(commit: StepCommit) -> bool:
        monkeypatch.setattr(store, "commit_step", real_commit)
        raise KeyboardInterrupt("the worker died")  # after the release was performed

    monkeypatch.setattr(store, "commit_step", die_before_storing)
    with pytest.raises(KeyboardInterrupt):
        recorder.deliver(runtime)
    assert store.lock_holder("gate") is None  # the release was performed
    waiter = store.create_execution("waiter", "def handler(s, t): pass", {}).id
    assert store.acquire_lock("gate", waiter, utc_now()) is None  # and a waiter took it
    runtime.step(ticket.execution_id, ticket.version, ticket.head_id)  # run again
    _deliver_all(recorder, runtime)
    assert store.get_execution(record.id).status is Status.ENDED_SUCCESS
    assert store.lock_holder("gate") == waiter  # untouched by the release run again


def test_a_lock_freed_while_its_waiter_stored_its_wait_wakes_the_waiter_at_once(
    by_hand, monkeypatch
):
    store, recorder, runtime = by_hand
    holder = store.create_execution("holder", "def handler(s, t): pass", {}).id
    assert store.acquire_lock("gate", holder, utc_now()) is None
    record = runtime.start(
        "waiter",
        "import flow_api\n\ndef handler(system, this):\n    system.setting('gate').acquire()\n",
    )
    recorder.deliver(runtime)  # parks at acquire
    real_commit = store.commit_step

    def freed_meanwhile(commit: StepCommit) -> bool:
        if commit.changes.get("waits_on") == "lock:gate":
            # The holder gives the lock back now: its release finds nobody waiting yet.
            monkeypatch.setattr(store, "commit_step", real_commit)
            assert store.release_lock("gate", holder) == holder
            assert store.list_lock_waiters("gate") == []
        return real_commit(commit)

    monkeypatch.setattr(store, "commit_step", freed_meanwhile)
    recorder.deliver(runtime)  # the lock is held: the waiter stores its wait
    assert store.get_execution(record.id).status is Status.WAITING
    assert [ticket.execution_id for ticket, _ in recorder.sent] == [record.id]  # woken
    _deliver_all(recorder, runtime)
    assert store.get_execution(record.id).status is Status.ENDED_SUCCESS


def test_a_timeout_that_passes_raises_lock_timeout_error_the_flow_can_catch(client, tmp_path):
    holder = _holding(client, tmp_path)
    waiter = run_flow(client, tmp_path, WAITER, "waiter", {"timeout": 1.5})
    assert waiter.status is Status.ENDED_SUCCESS, waiter.record().error
    assert holder.id in waiter.outputs["timed_out"] and "1.5 s" in waiter.outputs["timed_out"]
    assert client.store.lock_holder("gate") == holder.id  # the holder kept it
    immediate = run_flow(client, tmp_path, WAITER, "immediate", {"timeout": 0})
    assert "timed_out" in immediate.outputs
    holder.cancel()


@pytest.mark.parametrize("timeout_s", [20, 600], ids=["loaded", "unloaded"])
def test_a_waiter_with_a_timeout_is_woken_by_the_release_not_by_its_deadline(
    client, tmp_path, timeout_s
):
    holder = _holding(client, tmp_path, hold_s=1.5)
    waiter = run_flow(client, tmp_path, WAITER, "waiter", {"timeout": timeout_s}, timeout_s=0)
    wait_until(lambda: waiter.status is Status.WAITING, 30, "the waiter to wait")
    deadline = waiter.record().wake_at
    assert deadline is not None and (deadline - utc_now()).total_seconds() > timeout_s - 10
    assert (waiter.record().worker is None) is (timeout_s > 60)  # unloaded past sleep_max
    assert holder.wait(30).status is Status.ENDED_SUCCESS
    assert waiter.wait(15).outputs == {"got": True}


def test_releasing_a_lock_another_execution_holds_raises_lock_not_held_error(client, tmp_path):
    holder = _holding(client, tmp_path)
    thief = run_flow(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            try:
                system.setting('gate').release()
            except flow_api.LockNotHeldError as error:
                this.save(output_value={'refused': str(error)})
        """,
        "thief",
    )
    assert thief.status is Status.ENDED_SUCCESS
    assert holder.id in thief.outputs["refused"] and "only the holder" in thief.outputs["refused"]
    assert client.store.lock_holder("gate") == holder.id
    holder.cancel()


@pytest.mark.parametrize("how", ["success", "error", "exception", "cancel"])
def test_an_execution_that_ends_gives_its_locks_back_and_wakes_the_waiter(client, tmp_path, how):
    ending = f"""
    import flow_api

    def handler(system, this):
        system.setting('gate').acquire()
        system.setting('gate-progress').save(value='held')
        this.sleep(this.get('input_value')['hold'])
        how = {how!r}
        if how == 'success':
            return this.success('kept it to the end')
        if how == 'error':
            this.error('failed holding it')
        raise RuntimeError('crashed holding it')
    """
    hold = {"hold": 3600 if how == "cancel" else 1}
    holder = run_flow(client, tmp_path, ending, "holder", hold, timeout_s=0)
    wait_until(lambda: client.get_setting("gate-progress") == "held", 30, "the holder")
    waiter = run_flow(client, tmp_path, WAITER, "waiter", timeout_s=0)
    wait_until(lambda: waiter.status is Status.WAITING, 30, "the waiter to wait")
    if how == "cancel":
        holder.cancel()
    assert waiter.wait(30).status is Status.ENDED_SUCCESS, waiter.record().error
    assert holder.wait(30).status.ended and waiter.outputs == {"got": True}
    _given_back(client.store, "gate")


def test_a_restore_keeps_the_lock_and_a_restored_acquire_takes_it_again(client, tmp_path):
    holder = _holding(client, tmp_path)
    wait_until(lambda: holder.status is Status.WAITING, 30, "the holder to sleep")
    first_acquire = holder.savepoints()[0]
    assert first_acquire.call == "setting.acquire" and len(holder.savepoints()) == 5
    holder.restore(holder.savepoints()[-1].id)  # to its sleep, after the acquire
    assert client.store.lock_holder("gate") == holder.id
    holder.restore(first_acquire.id)  # performed afresh: it holds the lock already
    wait_until(
        lambda: len(holder.savepoints()) == 9 and holder.status is Status.WAITING,
        30,
        "the restored flow to sleep again",
    )
    assert client.store.lock_holder("gate") == holder.id
    holder.cancel()
    assert _row_holder(client.store, "gate") is None  # the cancel gave it back at once


def test_an_errored_holder_restored_does_not_hold_its_lock_again(client, tmp_path):
    failed = run_flow(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            system.setting('gate').acquire()
            this.save_dump('after-acquire')
            if not system.setting('may-pass').exists():
                raise RuntimeError('boom')
            this.sleep(3600)
        """,
    )
    assert failed.status is Status.ENDED_ERROR and client.store.lock_holder("gate") is None
    _given_back(client.store, "gate")
    # Had that release been lost, the row would still name it: a restore must not revive it.
    assert client.store.acquire_lock("gate", failed.id, utc_now()) is None
    client.set_setting("may-pass", True)
    failed.restore("after-acquire", by="name")
    wait_until(lambda: failed.status is Status.WAITING, 30, "the restored flow to sleep")
    assert client.store.lock_holder("gate") is None
    failed.cancel()


def test_archiving_an_ended_holder_clears_a_lock_row_still_naming_it(client, tmp_path):
    done = run_flow(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            system.setting('gate').acquire()
        """,
    )
    assert done.status is Status.ENDED_SUCCESS and client.store.lock_holder("gate") is None
    _given_back(client.store, "gate")
    client.store.acquire_lock("gate", done.id, utc_now())  # a release lost at its end
    assert _row_holder(client.store, "gate") == done.id
    done.archive()
    assert _row_holder(client.store, "gate") is None  # archive gave it back


def test_a_lost_wake_up_is_recovered_by_the_reaper(client, tmp_path):
    holder = _holding(client, tmp_path)
    waiter = run_flow(client, tmp_path, WAITER, "waiter", timeout_s=0)
    wait_until(lambda: waiter.status is Status.WAITING, 30, "the waiter to wait")
    # Free the lock behind flowrt's back: nobody is woken but by the reaper's pass.
    assert client.store.release_lock("gate", holder.id) == holder.id
    assert waiter.wait(30).status is Status.ENDED_SUCCESS, waiter.record().error
    assert waiter.outputs == {"got": True}
    holder.cancel()


def test_a_waiter_holds_no_worker_slot_while_it_waits(flowrt_env, tmp_path):
    flowrt_env(FLOWRT_WORKER_CONCURRENCY="1")
    client = flowrt.default_client()
    holder = _holding(client, tmp_path, hold_s=4)
    waiter = run_flow(client, tmp_path, WAITER, "waiter", timeout_s=0)
    wait_until(lambda: waiter.status is Status.WAITING, 30, "the waiter to wait")
    # The only worker thread is free: an unrelated flow runs to its end meanwhile.
    other = run_flow(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            for i in range(5):
                this.get('id')
        """,
        "other",
        timeout_s=30,
    )
    assert other.status is Status.ENDED_SUCCESS
    assert waiter.status is Status.WAITING and holder.status is Status.WAITING
    assert waiter.wait(30).status is Status.ENDED_SUCCESS


# --- real workers: two processes, one lock, a counter outside flowrt ----------------------------

CONTENDER = """
import flow_api
import redis

# Replay runs the flow's code again, and a worker may die anywhere in it: each entry and
# exit counts once, atomically, keyed by execution and round.
ENTER = (
    "if redis.call('SET', KEYS[1], 1, 'NX') then "
    "redis.call('RPUSH', KEYS[3], redis.call('INCR', KEYS[2])) end"
)
LEAVE = "if redis.call('SET', KEYS[1], 1, 'NX') then redis.call('DECR', KEYS[2]) end"

def handler(system, this):
    inputs = this.get('input_value')
    me = this.get('id')
    outside = redis.Redis.from_url(inputs['redis'])
    lock = system.setting('shared')
    for i in range(inputs['rounds']):
        lock.acquire()
        token = me + ':' + str(i)
        outside.eval(ENTER, 3, 'locktest:enter:' + token, 'locktest:inside', 'locktest:seen')
        this.sleep(0.2)
        this.get('id')
        outside.eval(LEAVE, 2, 'locktest:leave:' + token, 'locktest:inside')
        lock.release()
    return this.success('done')
"""


def _waits_for_the_shared_lock(handles) -> bool:
    return any(
        r.status is Status.WAITING and r.waits_on == "lock:shared"
        for r in (h.record() for h in handles)
    )


def _counted_once_each(redis_url: str, entries: int) -> None:
    import redis

    outside = redis.Redis.from_url(redis_url)
    try:
        seen = [int(n) for n in outside.lrange("locktest:seen", 0, -1)]
        assert len(seen) == entries and max(seen) == 1, seen
        assert int(outside.get("locktest:inside")) == 0
    finally:
        outside.close()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.parametrize("live_max", ["256", "0"], ids=["sticky", "every-step-hops"])
def test_executions_contending_for_a_lock_on_two_workers_never_both_hold_it(
    production, redis_url, tmp_path, live_max
):
    client, workers = production
    # With no live cache every step goes to the shared queue: the holder and the waiters
    # hop between the two workers, replaying their journals there.
    workers.env["FLOWRT_LIVE_MAX"] = live_max
    names = ("alpha", "beta")
    for name in names:
        workers.start(name)
    path = write_flow(tmp_path, textwrap.dedent(CONTENDER), "contender")
    contenders, rounds = 3, 4
    handles = [
        flowrt.start(path, {"redis": redis_url, "rounds": rounds}) for _ in range(contenders)
    ]
    wait_until(lambda: _waits_for_the_shared_lock(handles), 60, "a waiter for the lock")
    for handle in handles:
        assert handle.wait(180).status is Status.ENDED_SUCCESS, handle.record().error
    _counted_once_each(redis_url, contenders * rounds)
    assert client.store.lock_holder("shared") is None
    for name in names:  # both worker processes took steps
        assert b"succeeded" in workers.log(name), name


@pytest.mark.postgres
@pytest.mark.redis
def test_a_worker_killed_amid_lock_contention_never_lets_two_executions_hold_it(
    production, redis_url, tmp_path
):
    client, workers = production
    doomed = workers.start("alpha")
    workers.start("beta")
    workers.start_beat()  # the reaper: it hands what the killed worker held to the others
    path = write_flow(tmp_path, textwrap.dedent(CONTENDER), "contender")
    contenders, rounds = 3, 4
    handles = [
        flowrt.start(path, {"redis": redis_url, "rounds": rounds}) for _ in range(contenders)
    ]
    wait_until(lambda: _waits_for_the_shared_lock(handles), 60, "a waiter for the lock")
    workers.kill(doomed)  # SIGKILL: whatever it held or was doing is cut short
    workers.start("gamma")
    for handle in handles:
        assert handle.wait(180).status is Status.ENDED_SUCCESS, handle.record().error
    _counted_once_each(redis_url, contenders * rounds)
    assert client.store.lock_holder("shared") is None

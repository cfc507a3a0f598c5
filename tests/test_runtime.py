"""The runtime's step driven by hand with a recording dispatcher: fences and overlapped commits."""

from __future__ import annotations

import textwrap
import threading

import pytest
from conftest import SECRET, Recorder, wait_until

from flowrt.options import Options
from flowrt.runtime import Runtime
from flowrt.status import Status
from flowrt.storage import SqlStore, StepCommit, open_store

FLOW = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        first = this.get('input_value')
        point = this.save_dump('p')
        second = this.get('input_value')
        this.save(output_value={'sum': first['n'] + second['n'], 'restored': point.restored})
        this.success('ok')
""")


class HookedStore(SqlStore):
    """A real SQL store that runs `before_commit` just before each step commit."""

    before_commit = None

    def commit_step(self, commit: StepCommit) -> bool:
        hook, self.before_commit = self.before_commit, None
        if hook is not None:
            hook()
        return super().commit_step(commit)


@pytest.fixture
def setup(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'rt.db'}")
    store.__class__ = HookedStore
    recorder = Recorder()
    runtime = Runtime(store, Options(secret=SECRET.encode()), recorder, worker="w1")
    yield store, recorder, runtime
    runtime.close()
    store.close()


def test_the_next_step_is_sent_before_the_commit_and_waits_for_it(setup):
    store, recorder, runtime = setup
    record = runtime.start("f", FLOW, {"n": 2})
    recorder.deliver(runtime)  # start: runs to the first get, stores savepoint #1
    commit_may_finish = threading.Event()
    store.before_commit = lambda: commit_may_finish.wait(10)
    stepping = threading.Thread(target=recorder.deliver, args=(runtime,))
    stepping.start()  # performs get #1, parks at save_dump, sends #2's step, then commits
    wait_until(lambda: len(recorder.sent) == 1, 10, "the next step message")
    ticket, worker = recorder.sent[0]
    assert worker == "w1" and ticket.version == 2 and ticket.call == "save_dump"
    assert store.get_execution(record.id).version == 1  # sent, not yet stored
    early = threading.Thread(target=recorder.deliver, args=(runtime,))
    early.start()
    early.join(0.3)
    assert early.is_alive()  # the next step waits for the commit before it performs
    commit_may_finish.set()
    stepping.join(10)
    early.join(10)
    assert store.get_execution(record.id).version == 3
    while recorder.sent:
        recorder.deliver(runtime)
    final = store.get_execution(record.id)
    assert final.status is Status.ENDED_SUCCESS and final.outputs == {"sum": 4, "restored": 0}


def test_a_step_sent_for_a_commit_that_lost_its_fence_does_nothing(setup):
    store, recorder, runtime = setup
    record = runtime.start("f", FLOW, {"n": 5})
    recorder.deliver(runtime)  # savepoint #1 (get)
    recorder.deliver(runtime)  # savepoint #2 (save_dump)
    recorder.deliver(runtime)  # savepoint #3 (second get)
    save_dump = store.list_savepoints(record.id)[1]
    # An operator restores save_dump just as the next step commits: that commit loses.
    store.before_commit = lambda: runtime.restore(record.id, save_dump.id)
    recorder.deliver(runtime)
    (lost, _), (restored, _) = recorder.sent
    assert lost.version == restored.version == 4 and lost.head_id != restored.head_id
    before = (store.get_execution(record.id), store.list_savepoints(record.id))
    assert before[0].head_id == save_dump.id
    steps = runtime.stats["steps"]
    recorder.deliver(runtime)  # the message of the lost commit
    assert (store.get_execution(record.id), store.list_savepoints(record.id)) == before
    assert runtime.stats["loads"] >= 1 and runtime.stats["steps"] == steps + 1
    while recorder.sent:
        recorder.deliver(runtime)
    final = store.get_execution(record.id)
    assert final.status is Status.ENDED_SUCCESS
    assert final.outputs == {"sum": 10, "restored": 1}
    assert store.get_savepoint(save_dump.id).restored == 1

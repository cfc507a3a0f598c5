"""Unloading a parked flow is invisible to it: none of its handlers runs, no thread stays behind."""

from __future__ import annotations

import textwrap
import threading

from conftest import wait_until, write_flow

import flowrt
from flowrt.status import Status


def flow_threads() -> set[threading.Thread]:
    """The live executions' handler threads of this process."""
    return {t for t in threading.enumerate() if t.name.startswith("flow-") and t.is_alive()}


def start_and_wait_unloaded(tmp_path, source: str, name: str = "flow") -> flowrt.Handle:
    """Start the flow and wait until its long sleep has unloaded it from this process."""
    handle = flowrt.start(write_flow(tmp_path, textwrap.dedent(source), name))

    def unloaded() -> bool:
        record = handle.record()
        return record.status is Status.WAITING and record.worker is None

    wait_until(unloaded, 30, "the sleeping execution to be unloaded")
    return handle


FINALLY_AFTER_A_LONG_SLEEP = """
    import flow_api

    MARKS = {marks!r}


    class Marker:
        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            with open(MARKS, 'a') as marks:
                marks.write('exit ran\\n')


    def handler(system, this):
        try:
            with Marker():
                this.sleep({seconds})
        finally:
            with open(MARKS, 'a') as marks:
                marks.write('finally ran\\n')
            system.setting('written-while-unwinding').save(value=1)
        this.success('woke')
"""


def test_unloading_a_sleeping_flow_runs_none_of_its_finally_code(client, tmp_path):
    marks = tmp_path / "marks.txt"
    before = flow_threads()
    source = FINALLY_AFTER_A_LONG_SLEEP.format(marks=str(marks), seconds=3600)
    handle = start_and_wait_unloaded(tmp_path, source)
    wait_until(lambda: not (flow_threads() - before), 30, "the unloaded flow's thread to end")
    assert not marks.exists()  # neither __exit__ nor finally ran at the unload
    assert not client.store.get_named("setting", "written-while-unwinding")
    assert [sp.call for sp in handle.savepoints()] == ["sleep"]
    handle.cancel()


def test_a_finally_block_runs_once_although_its_sleep_was_unloaded_and_woken(
    client, flowrt_env, tmp_path
):
    marks = tmp_path / "marks.txt"
    source = FINALLY_AFTER_A_LONG_SLEEP.format(marks=str(marks), seconds=1.5)
    flowrt_env(FLOWRT_SLEEP_MAX_SECONDS="0.5")
    handle = flowrt.start(write_flow(tmp_path, textwrap.dedent(source))).wait(60)
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    # Once each: on the run that woke, not at the unload.
    assert marks.read_text() == "exit ran\nfinally ran\n"
    assert handle.record().worker is None


SWALLOWING_LOOP = """
    import flow_api


    def handler(system, this):
        while True:
            try:
                this.sleep(3600)
                break
            except:
                pass
        this.success('woke')
"""


def test_a_flow_that_catches_everything_around_its_sleep_leaves_no_thread_spinning(
    client, tmp_path
):
    before = flow_threads()
    handles = [start_and_wait_unloaded(tmp_path, SWALLOWING_LOOP, f"loop{n}") for n in range(3)]
    wait_until(lambda: not (flow_threads() - before), 30, "the unloaded flows' threads to end")
    for handle in handles:
        assert [sp.call for sp in handle.savepoints()] == ["sleep"]  # nothing more recorded
        assert handle.record().status is Status.WAITING
        handle.cancel()

"""Defects an audit reproduced in runaway code handling (the step deadline during replay, a
suspect beside a long step); each test failed before its fix and guards it now.
"""

from __future__ import annotations

import textwrap

import pytest
from conftest import WorkerProcesses, wait_until, write_flow

import flowrt
from flowrt.status import Status

# Four stretches of 0.8 s of the flow's own work (a library call that blocks, a computation),
# each well under the 2 s step deadline, separated by Flow-API calls.
SEGMENTS = textwrap.dedent("""
    import threading
    import flow_api

    def handler(system, this):
        for i in range(4):
            threading.Event().wait(0.8)  # the flow's own work
            this.log('segment', i)
        point = this.save_dump('end')
        if point.restored == 0:
            raise ValueError('fail once, to be restored')
        this.save(output_value={'restored': point.restored})
""")


def test_replay_is_not_held_to_one_deadline_for_all_the_calls_it_replays(
    client, flowrt_env, tmp_path
):
    flowrt_env(FLOWRT_MAX_STEP_SECONDS="2")
    handle = flowrt.start(write_flow(tmp_path, SEGMENTS, "segments"))
    record = handle.wait(60).record()
    # Live, no stretch was stopped: it failed by its own raise, as meant.
    assert record.status is Status.ENDED_ERROR, record.message
    assert "ValueError" in (record.message or ""), record.message
    handle.restore("end", by="name")
    record = handle.wait(60).record()
    assert "FLOWRT_MAX_STEP_SECONDS" not in (record.message or ""), record.message
    assert record.status is Status.ENDED_SUCCESS, record.message
    assert handle.outputs == {"restored": 1}


# --- isolation of suspects, with real workers -------------------------------------------------


@pytest.fixture
def workers(flowrt_env, pg_clean, redis_url, tmp_path):
    env = flowrt_env(
        FLOWRT_DATABASE_URL=pg_clean,
        FLOWRT_BROKER_URL=redis_url,
        FLOWRT_LEASE_SECONDS="2",
        FLOWRT_MAX_STEP_SECONDS="120",
        FLOWRT_SHUTDOWN_GRACE_SECONDS="5",
    )
    processes = WorkerProcesses(env, tmp_path)
    try:
        yield flowrt.default_client(), processes
    finally:
        processes.stop_all()


def test_a_suspect_arriving_beside_a_long_step_does_not_stall_the_whole_worker(workers, tmp_path):
    client, processes = workers
    sleeper = textwrap.dedent("""
        import flow_api

        def handler(system, this):
            for i in range(400):
                this.sleep(0.3)
    """)
    started = tmp_path / "long-started"
    long_step = textwrap.dedent(f"""
        import threading
        import flow_api

        def handler(system, this):
            this.log('begin')
            open({str(started)!r}, 'w').close()
            threading.Event().wait(45)  # 45 s of the flow's own work, under the 120 s limit
            this.log('end')
    """)
    quick = textwrap.dedent("""
        import flow_api

        def handler(system, this):
            for i in range(3):
                this.log('step', i)
    """)
    # A bystander held by the first worker, which dies (kill -9): it becomes a suspect.
    first = processes.start(concurrency=2)
    suspect = client.start(write_flow(tmp_path, sleeper, "sleeper"))
    wait_until(lambda: len(suspect.savepoints()) >= 3, 30, "the sleeper to run on w1")
    wait_until(lambda: suspect.record().worker == first.node, 30, "w1 to hold the sleeper")
    processes.kill(first)
    # A second worker runs a long (legitimate) step; no beat yet, so no takeover yet.
    second = processes.start(concurrency=4)
    long = client.start(write_flow(tmp_path, long_step, "long"))
    wait_until(started.exists, 30, "the long step to begin")
    # Beat's reaper hands the suspect to the second worker, where it waits to run alone.
    processes.start_beat()
    wait_until(lambda: suspect.record().worker == second.node, 30, "w2 to claim the suspect")
    # The second worker has three free threads: three quick flows should take seconds.
    handles = [client.start(write_flow(tmp_path, quick, f"quick{i}")) for i in range(3)]
    try:
        for handle in handles:
            handle.wait(15)
    except TimeoutError:
        raise AssertionError(
            f"quick flows stalled behind the suspect: {[h.status for h in handles]}; "
            f"the long step: {long.status}"
        ) from None
    assert all(handle.status is Status.ENDED_SUCCESS for handle in handles)

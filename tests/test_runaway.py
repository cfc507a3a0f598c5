"""Runaway flow code: the step deadline, cancel of a running flow, SIGTERM during a spin.

A flow's own code runs on a thread of its worker. Code that never reaches a Flow-API call is
stopped after FLOWRT_MAX_STEP_SECONDS, its execution ends ENDED_ERROR naming the line, and
its worker slot is free again; code blocked in C that cannot be interrupted makes a worker
process replace itself. Each case is checked through the user's entry points: the embedded
`flowrt run` / `flowrt.start`, and real worker processes on PostgreSQL and Redis.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, WorkerProcesses, line_of, wait_until, write_flow

import flowrt
from flowrt.status import Status

SPIN = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        this.log('about to spin')
        n = 0
        while True:
            n += 1  # spins here
""")

# Swallows every interruption it can: the stop is raised into it again until it gives up.
STUBBORN = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        this.log('about to spin')
        n = 0
        while True:
            try:
                n += 1  # spins here
            except BaseException:
                pass
""")

BLOCKED_IN_C = textwrap.dedent("""
    import time
    import flow_api

    def handler(system, this):
        this.log('about to block')
        time.sleep(10 ** 6)  # blocks here
""")

QUICK = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        for i in range(3):
            this.log('step', i)
        this.save(output_value={'done': True})
""")


def test_flow_code_past_the_step_deadline_ends_the_run_with_the_line_and_the_limit(tmp_path):
    result = _flowrt_run(tmp_path, write_flow(tmp_path, SPIN, "spin"), FLOWRT_MAX_STEP_SECONDS="1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ENDED_ERROR" in result.stdout
    assert "FLOWRT_MAX_STEP_SECONDS" in result.stdout
    assert "longer than 1 s" in result.stdout
    assert any(f"stopped at line {line}\n" in result.stdout for line in _loop_lines(SPIN))


def test_a_flow_that_swallows_the_stop_is_stopped_all_the_same(client, flowrt_env, tmp_path):
    flowrt_env(FLOWRT_MAX_STEP_SECONDS="1")
    handle = flowrt_start(tmp_path, STUBBORN)
    record = handle.wait(60).record()
    assert record.status is Status.ENDED_ERROR
    assert record.error_line in _loop_lines(STUBBORN)
    assert "could not be interrupted" not in (record.message or "")


def test_a_flow_blocked_in_c_code_ends_and_says_it_could_not_be_interrupted(
    client, flowrt_env, tmp_path
):
    flowrt_env(FLOWRT_MAX_STEP_SECONDS="1")
    handle = flowrt_start(tmp_path, BLOCKED_IN_C)
    record = handle.wait(60).record()
    assert record.status is Status.ENDED_ERROR
    assert "could not be interrupted (blocked outside Python code)" in (record.message or "")
    assert record.error_line == line_of(BLOCKED_IN_C, "blocks here")


def test_the_step_deadline_can_be_restored_past_once_the_cause_is_gone(
    client, flowrt_env, tmp_path
):
    flowrt_env(FLOWRT_MAX_STEP_SECONDS="1")
    flag = tmp_path / "spin"
    flag.write_text("on")
    source = textwrap.dedent(f"""
        import os
        import flow_api

        def handler(system, this):
            this.save_dump('before')
            while os.path.exists({str(flag)!r}):
                pass
            this.save(output_value={{'through': True}})
    """)
    handle = flowrt_start(tmp_path, source)
    assert handle.wait(60).status is Status.ENDED_ERROR
    flag.unlink()
    handle.restore("before", by="name")
    assert handle.wait(60).status is Status.ENDED_SUCCESS
    assert handle.outputs == {"through": True}


@pytest.mark.parametrize(
    ("name", "value"), [("FLOWRT_MAX_STEP_SECONDS", "0"), ("FLOWRT_MAX_CRASHES", "0")]
)
def test_a_limit_of_zero_is_refused_with_the_variable_named(tmp_path, name, value):
    result = _flowrt_run(tmp_path, write_flow(tmp_path, QUICK), **{name: value})
    assert result.returncode == 2
    assert f"{name}={value}" in result.stderr and "Traceback" not in result.stderr


# --- real workers: the slot is freed, the worker stays useful ---------------------------------


@pytest.fixture
def cluster(flowrt_env, pg_clean, redis_url, tmp_path):
    """Returns `start(max_step_s)`: a client and beat on PostgreSQL and Redis, no worker yet."""
    workers: list[WorkerProcesses] = []

    def start(max_step_s: float):
        env = flowrt_env(
            FLOWRT_DATABASE_URL=pg_clean,
            FLOWRT_BROKER_URL=redis_url,
            FLOWRT_LEASE_SECONDS="2",
            FLOWRT_MAX_STEP_SECONDS=str(max_step_s),
            FLOWRT_SHUTDOWN_GRACE_SECONDS="15",
        )
        workers.append(WorkerProcesses(env, tmp_path))
        workers[0].start_beat()
        return flowrt.default_client(), workers[0]

    try:
        yield start
    finally:
        for processes in workers:
            processes.stop_all()


def test_a_spinning_flow_on_a_worker_of_two_slots_does_not_stop_the_others(cluster, tmp_path):
    client, workers = cluster(6)  # long enough to reach the spin on a loaded machine
    workers.start(concurrency=2)
    spinning = client.start(write_flow(tmp_path, SPIN, "spin"))
    wait_until(lambda: spinning.savepoints(), 30, "the spin to begin")
    quick = [client.start(write_flow(tmp_path, QUICK, "quick")) for _ in range(5)]
    for handle in quick:
        assert handle.wait(60).status is Status.ENDED_SUCCESS
    record = spinning.wait(60).record()
    assert record.status is Status.ENDED_ERROR
    assert record.error_line in _loop_lines(SPIN)
    # Both slots are free again: two at once finish after the spin was stopped.
    after = [client.start(write_flow(tmp_path, QUICK, "quick")) for _ in range(2)]
    for handle in after:
        assert handle.wait(60).status is Status.ENDED_SUCCESS


def test_cancel_of_a_spinning_flow_frees_the_only_slot_of_its_worker(cluster, tmp_path):
    client, workers = cluster(600)
    workers.start(concurrency=1)
    spinning = client.start(write_flow(tmp_path, STUBBORN, "spin"))
    wait_until(lambda: spinning.savepoints(), 30, "the spin to begin")
    spinning.cancel()
    assert spinning.status is Status.ENDED_CANCELLED
    # The worker has one slot, the one the spin held, and the step deadline is ten minutes
    # away: this finishes only because cancel stopped the spin.
    quick = client.start(write_flow(tmp_path, QUICK, "quick"))
    assert quick.wait(60).status is Status.ENDED_SUCCESS
    assert spinning.status is Status.ENDED_CANCELLED


@pytest.mark.parametrize("source", [STUBBORN, BLOCKED_IN_C], ids=["spinning", "blocked-in-c"])
def test_sigterm_during_a_runaway_flow_stops_the_worker_within_its_grace_and_hands_it_on(
    cluster, tmp_path, source
):
    client, workers = cluster(600)
    first = workers.start(concurrency=2)
    runaway = client.start(write_flow(tmp_path, source, "runaway"))
    wait_until(lambda: runaway.savepoints(), 30, "the flow to begin")
    wait_until(lambda: runaway.record().worker == first.node, 30, "the first worker to hold it")
    first.terminate()
    first.wait(timeout=30)  # compose's stop grace: the worker must be gone by then
    # Handed over, not lost: another worker takes it at once.
    second = workers.start(concurrency=2)
    wait_until(lambda: runaway.record().worker == second.node, 30, "the second worker to take it")
    runaway.cancel()
    assert runaway.status is Status.ENDED_CANCELLED


def test_a_worker_whose_flow_cannot_be_stopped_replaces_itself_and_hands_over_the_rest(
    cluster, tmp_path
):
    client, workers = cluster(3)
    first = workers.start(concurrency=2)
    slow = textwrap.dedent("""
        import flow_api

        def handler(system, this):
            for i in range(40):
                this.sleep(0.25)
            this.save(output_value={'slept': 40})
    """)
    other = client.start(write_flow(tmp_path, slow, "slow"))
    blocked = client.start(write_flow(tmp_path, BLOCKED_IN_C, "blocked"))
    record = blocked.wait(60).record()
    assert record.status is Status.ENDED_ERROR
    assert "could not be interrupted" in (record.message or "")
    first.wait(timeout=60)  # it stops by itself, for its supervisor to start a fresh one
    workers.start(concurrency=2)
    try:
        other.wait(60)
    except TimeoutError:
        raise AssertionError((other.record(), workers.logs()[-6000:])) from None
    assert other.status is Status.ENDED_SUCCESS
    assert other.outputs == {"slept": 40}


def flowrt_start(tmp_path, source: str):
    return flowrt.start(write_flow(tmp_path, source, "runaway"))


def _loop_lines(source: str) -> set[int]:
    """The lines of the spin loop: its body, or the `while` it jumps back to."""
    body = line_of(source, "spins here")
    return set(range(line_of(source, "while True"), body + 1))


def _flowrt_run(tmp_path: Path, flow: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`flowrt run FLOW` as its own process, on a fresh embedded home."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRT_")}
    return subprocess.run(
        [str(Path(sys.executable).parent / "flowrt"), "run", flow],
        cwd=ROOT,
        env={**clean, "FLOWRT_HOME": str(tmp_path / "home"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )

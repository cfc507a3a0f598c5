"""Real `celery -A tasks worker` processes on Redis and PostgreSQL share and finish executions."""

from __future__ import annotations

import textwrap

import pytest
from conftest import write_flow

import flowrt
from flowrt.status import Status

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

COUNTING_FLOW = textwrap.dedent("""
    import flow_api

    def handler(system, this, inputs):
        total = 0
        for i in range(inputs['calls']):
            total += this.get('input_value')['step'] + i
        this.save(output_value={'total': total})
        this.success('counted')
""")


def expected_total(calls: int, step: int) -> int:
    return sum(step + i for i in range(calls))


def steps_run_by(log: str) -> int:
    return sum(1 for line in log.splitlines() if "flowrt.step" in line and "succeeded" in line)


def test_two_worker_processes_share_the_steps_of_one_long_flow(production, tmp_path, monkeypatch):
    client, workers = production
    # No live cache: every step goes to the shared queue, so both workers take steps and
    # each one replays the journal it did not see.
    workers.env["FLOWRT_LIVE_MAX"] = "0"
    first, second = workers.start("alpha"), workers.start("beta")
    handle = flowrt.start(write_flow(tmp_path, COUNTING_FLOW), {"calls": 60, "step": 3})
    handle.wait(120)
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert handle.outputs == {"total": expected_total(60, 3)}
    seqs = [p.seq for p in handle.savepoints()]
    assert seqs == list(range(1, 63))  # 60 gets, save, success: none duplicated or skipped
    logs = {p.name: p.read_text() for p in tmp_path.glob("*.log")}
    by_worker = {name: steps_run_by(text) for name, text in logs.items()}
    assert all(count > 0 for count in by_worker.values()), by_worker
    assert sum(by_worker.values()) >= 63
    assert first.poll() is None and second.poll() is None


def test_many_executions_finish_correctly_on_two_workers(production, tmp_path):
    client, workers = production
    workers.start("alpha")
    workers.start("beta")
    path = write_flow(tmp_path, COUNTING_FLOW)
    handles = [flowrt.start(path, {"calls": 25, "step": n}) for n in range(12)]
    for n, handle in enumerate(handles):
        handle.wait(120)
        assert handle.status is Status.ENDED_SUCCESS, handle.record().error
        assert handle.outputs == {"total": expected_total(25, n)}
        assert [p.seq for p in handle.savepoints()] == list(range(1, 28))


def test_an_execution_shows_the_worker_it_is_loaded_on(production, tmp_path):
    client, workers = production
    workers.start("gamma")
    handle = flowrt.start(
        write_flow(
            tmp_path,
            textwrap.dedent("""
        import flow_api

        def handler(system, this):
            this.sleep(2)
            this.success('ok')
    """),
        )
    )
    from conftest import wait_until

    wait_until(lambda: handle.status is Status.WAITING, 60, "the sleep")
    assert handle.record().worker.startswith("gamma@")
    handle.wait(60)
    assert handle.status is Status.ENDED_SUCCESS
    assert handle.record().worker is None

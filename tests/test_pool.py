"""flowrt's worker pool grows and shrinks (--autoscale, control commands); others are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import weakref
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import ROOT, WorkerProcesses, wait_until, write_flow

import flowrt
from flowrt.status import Status
from tasks import pool_choice
from tasks.autoscale import Autoscaler
from tasks.pool import StepPool

# --- the pool on its own -----------------------------------------------------------------------


class Steps:
    """Steps that run until the test lets them end; counts what the pool reported back."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = 0
        self.results: list[Any] = []
        self._lock = threading.Lock()

    def step(self, value: int) -> int:
        with self._lock:
            self.started += 1
        self.release.wait(30)
        return value

    def done(self, result: Any) -> None:
        with self._lock:
            self.results.append(result)

    def apply(self, pool: StepPool, value: int) -> None:
        pool.apply_async(self.step, (value,), callback=self.done)


@pytest.fixture
def steps() -> Steps:
    return Steps()


@pytest.fixture
def started_pool() -> Any:
    pools: list[StepPool] = []

    def start(size: int) -> StepPool:
        pool = StepPool(size)
        pool.start()
        pools.append(pool)
        return pool

    yield start
    for pool in pools:
        pool.stop()


def test_a_grown_pool_runs_as_many_steps_at_once_as_its_new_size(started_pool, steps):
    pool = started_pool(1)
    pool.grow(3)
    for value in range(4):
        steps.apply(pool, value)
    wait_until(lambda: steps.started == 4, 10, "four steps at once")
    assert pool.num_processes == 4 and pool.info["busy"] == 4
    steps.release.set()
    wait_until(lambda: len(steps.results) == 4, 10, "the four results")


def test_a_thread_shrunk_away_finishes_its_step_before_it_leaves(started_pool, steps):
    pool = started_pool(3)
    for value in range(3):
        steps.apply(pool, value)
    wait_until(lambda: steps.started == 3, 10, "three busy threads")
    pool.shrink(2)
    assert pool.num_processes == 1  # what the autoscaler reads, at once
    assert pool.info["threads"] == 3  # while the threads finish their steps
    steps.release.set()
    wait_until(lambda: pool.info["threads"] == 1, 10, "two threads to leave")
    assert sorted(steps.results) == [0, 1, 2]


def test_idle_threads_leave_at_once_when_the_pool_shrinks(started_pool):
    pool = started_pool(4)
    pool.shrink(3)
    wait_until(lambda: pool.info["threads"] == 1, 10, "three idle threads to leave")
    pool.grow(2)
    assert pool.info["threads"] == 3 and pool.num_processes == 3


def test_a_pool_shrunk_to_nothing_takes_a_thread_back_for_a_step_that_falls_due(
    started_pool, steps
):
    pool = started_pool(1)
    pool.shrink(1)
    wait_until(lambda: pool.info["threads"] == 0, 10, "the thread to leave")
    steps.release.set()
    steps.apply(pool, 7)
    wait_until(lambda: steps.results == [7], 10, "the step to run")
    assert pool.num_processes == 1


def test_a_stopping_pool_finishes_the_steps_begun_and_drops_those_not_begun(steps):
    pool = StepPool(1)
    pool.start()
    steps.apply(pool, 1)
    steps.apply(pool, 2)  # waits for the only thread
    wait_until(lambda: steps.started == 1, 10, "the first step to begin")
    threading.Timer(0.2, steps.release.set).start()
    pool.stop()
    assert steps.results == [1] and steps.started == 1


# --- the autoscaler ---------------------------------------------------------------------------


class Request:
    """What the autoscaler sees of a received task."""

    def __init__(self, name: str) -> None:
        self.name = name


def test_the_reapers_messages_are_neither_load_nor_activity_to_the_autoscaler(monkeypatch):
    held = [Request("flowrt.reap"), Request("flowrt.step"), Request("flowrt.reap")]
    reserved: weakref.WeakSet[Request] = weakref.WeakSet(held)
    monkeypatch.setattr("celery.worker.state.reserved_requests", reserved)
    scaler = Autoscaler(SimpleNamespace(num_processes=1), 6, 1, keepalive=30)
    assert scaler.qty == 1
    before = scaler._last_task_received
    scaler.on_task_received(Request("flowrt.reap"))
    assert scaler._last_task_received == before
    scaler.on_task_received(Request("flowrt.step"))
    assert scaler._last_task_received is not None


def test_the_autoscaler_looks_every_second_and_keeps_the_keepalive_for_idleness():
    scaler = Autoscaler(SimpleNamespace(num_processes=1), 6, 1, keepalive=30)
    assert scaler.keepalive == 1.0 and scaler.info()["keepalive"] == 30.0


# --- pools flowrt refuses ---------------------------------------------------------------------


def fake_worker(pool_cls: Any, conf_pool: str = pool_choice.FLOWRT_POOL, **options: Any) -> Any:
    return SimpleNamespace(
        pool_cls=pool_cls,
        options=options,
        app=SimpleNamespace(conf=SimpleNamespace(worker_pool=conf_pool)),
    )


@pytest.mark.parametrize("name", ["prefork", "solo", "gevent", "eventlet", "processes"])
def test_a_pool_named_in_the_worker_pool_setting_is_refused_by_name(name):
    refused = pool_choice.refused_pool(fake_worker(StepPool, conf_pool=name))
    assert refused == ("prefork" if name == "processes" else name)
    assert "more worker processes" in pool_choice.refusal(refused)


def test_flowrts_pool_and_celerys_fixed_thread_pool_are_accepted_without_autoscale():
    assert pool_choice.refused_pool(fake_worker(StepPool)) is None
    assert pool_choice.refused_pool(fake_worker("threads")) is None
    assert pool_choice.refused_pool(fake_worker("threads", autoscale=[4, 1])) == "threads"


@pytest.mark.parametrize(
    "arguments, environment, refused",
    [
        (["-P", "prefork"], {}, "prefork"),
        (["--pool=solo"], {}, "solo"),
        (["-P", "threads", "--autoscale=4,1"], {}, "threads"),
        ([], {"CELERY_WORKER_POOL": "prefork"}, "prefork"),
    ],
)
def test_a_worker_given_another_pool_exits_at_start_saying_why_and_what_to_do(
    flowrt_env, arguments, environment, refused
):
    flowrt_env()  # the worker would run embedded on SQLite: it stops before it connects
    command = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-n", "refused@%h"]
    done = subprocess.run(
        [*command, *arguments],
        cwd=ROOT,
        env={**os.environ, **environment},
        capture_output=True,
        timeout=60,
    )
    said = done.stderr.decode()
    assert done.returncode == pool_choice.EXIT_WRONG_POOL, said[-2000:]
    assert f"flowrt refuses the {refused!r} worker pool" in said
    assert "--autoscale=MAX,MIN, or more worker processes" in said
    assert "ready" not in done.stdout.decode() + said


# --- real workers on Redis and PostgreSQL -----------------------------------------------------

# Each call is preceded by a little of the flow's own work, so that a step keeps its pool
# thread busy for a while and a shrink meets busy threads.
BUSY_FLOW = textwrap.dedent("""
    import time
    import flow_api

    def handler(system, this, inputs):
        total = 0
        for i in range(inputs['calls']):
            time.sleep(inputs['work_s'])
            total += this.get('input_value')['step'] + i
        this.save(output_value={'total': total})
        this.success('counted')
""")


def start_worker(workers: WorkerProcesses, name: str, *options: str) -> subprocess.Popen[bytes]:
    """`celery -A tasks worker -n NAME@%h OPTIONS` (quiet: no gossip, mingle or heartbeat)."""
    quiet = ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    arguments = ["worker", "-n", f"{name}@%h", "--loglevel", "INFO", *quiet, *options]
    proc = workers._spawn(name, arguments)
    wait_until(lambda: b"ready" in workers.log(name), 60, f"worker {name} to be ready")
    proc.node = workers.node(name)  # type: ignore[attr-defined]
    return proc


def stats_by_cli(workers: WorkerProcesses, node: str) -> dict[str, Any]:
    """What `celery -A tasks inspect stats -d NODE --json` says about `node` ({} if silent)."""
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "tasks", "inspect", "stats", "-d", node, "-j"],
        cwd=ROOT,
        env=workers.env,
        capture_output=True,
        timeout=60,
    )
    try:
        return json.loads(done.stdout.decode()).get(node, {})
    except ValueError:
        return {}


def autoscaler_of(client: Any, node: str) -> dict[str, Any]:
    """The autoscaler's part of `node`'s stats ({} when it does not answer in time)."""
    replies = client.app.control.inspect([node], timeout=2).stats() or {}
    return replies.get(node, {}).get("autoscaler", {})


def start_burst(tmp_path: Any, count: int, calls: int, work_s: float) -> list[Any]:
    path = write_flow(tmp_path, BUSY_FLOW, "busy")
    return [flowrt.start(path, {"calls": calls, "step": n, "work_s": work_s}) for n in range(count)]


def assert_all_ended_right(handles: list[Any], calls: int, timeout_s: float = 180) -> None:
    """Every execution ENDED_SUCCESS with its total, its savepoints 1..calls+2 once each."""
    for n, handle in enumerate(handles):
        handle.wait(timeout_s)
        assert handle.status is Status.ENDED_SUCCESS, handle.record().error
        assert handle.outputs == {"total": sum(n + i for i in range(calls))}
        assert [p.seq for p in handle.savepoints()] == list(range(1, calls + 3))


def reaps_received(workers: WorkerProcesses, name: str) -> int:
    return workers.log(name).count(b"Task flowrt.reap[")


@pytest.mark.postgres
@pytest.mark.redis
def test_an_autoscaled_worker_grows_under_a_burst_and_shrinks_after_keepalive_with_beat_running(
    production, tmp_path
):
    client, workers = production
    workers.env["AUTOSCALE_KEEPALIVE"] = "2"
    workers.start_beat()
    worker = start_worker(workers, "auto", "--autoscale=6,1")
    stats = wait_until(lambda: stats_by_cli(workers, worker.node), 30, "stats from the CLI")
    assert stats["autoscaler"]["current"] == 1 and stats["prefetch_count"] == 6
    assert stats["pool"]["implementation"] == pool_choice.FLOWRT_POOL

    handles = start_burst(tmp_path, 40, 15, 0.01)
    wait_until(
        lambda: stats_by_cli(workers, worker.node).get("autoscaler", {}).get("current") == 6,
        60,
        "inspect stats to show the pool grown to MAX",
    )
    assert_all_ended_right(handles, 15)
    # Beat goes on sending the reaper every second; the pool shrinks all the same.
    idle_since = reaps_received(workers, "auto")
    wait_until(
        lambda: stats_by_cli(workers, worker.node).get("autoscaler", {}).get("current") == 1,
        60,
        "inspect stats to show the pool shrunk back to MIN",
    )
    assert reaps_received(workers, "auto") > idle_since
    assert b"Scaling down" in workers.log("auto") and worker.poll() is None


@pytest.mark.postgres
@pytest.mark.redis
def test_a_pool_scaled_down_under_load_loses_no_step_and_skips_no_savepoint(production, tmp_path):
    client, workers = production
    worker = start_worker(workers, "down", "--autoscale=6,1")
    handles = start_burst(tmp_path, 30, 20, 0.02)
    wait_until(lambda: autoscaler_of(client, worker.node).get("current") == 6, 60, "MAX")
    client.app.control.autoscale(2, 1, destination=[worker.node])  # while all six are busy
    wait_until(lambda: autoscaler_of(client, worker.node).get("max") == 2, 30, "the new MAX")
    assert autoscaler_of(client, worker.node)["current"] <= 2
    assert_all_ended_right(handles, 20)
    assert worker.poll() is None


@pytest.mark.postgres
@pytest.mark.redis
def test_a_fixed_pool_shrunk_by_control_command_under_load_loses_nothing(production, tmp_path):
    client, workers = production
    worker = start_worker(workers, "fixed", "-c", "5")
    handles = start_burst(tmp_path, 20, 20, 0.02)
    wait_until(lambda: any(h.savepoints() for h in handles), 60, "the burst to be under way")
    client.app.control.pool_shrink(3, destination=[worker.node])
    stats = wait_until(lambda: client.app.control.inspect([worker.node]).stats(), 30, "stats")
    assert stats[worker.node]["pool"]["max-concurrency"] == 2
    assert stats[worker.node]["prefetch_count"] == 2
    assert_all_ended_right(handles, 20)


@pytest.mark.postgres
@pytest.mark.redis
def test_sigterm_of_an_autoscaled_worker_while_executions_run_hands_them_on_intact(
    production, tmp_path
):
    client, workers = production
    workers.env["FLOWRT_SHUTDOWN_GRACE_SECONDS"] = "10"
    workers.start_beat()
    start_worker(workers, "staying", "--autoscale=6,1")
    leaving = start_worker(workers, "leaving", "--autoscale=6,1")
    handles = start_burst(tmp_path, 30, 25, 0.02)
    wait_until(
        lambda: sum(h.record().worker == leaving.node for h in handles) >= 5,
        60,
        "the leaving worker to hold executions",
    )
    leaving.terminate()
    assert leaving.wait(30) == 0  # warm shutdown within the grace period
    assert_all_ended_right(handles, 25)
    assert b"Warm shutdown" in workers.log("leaving")


@pytest.mark.postgres
@pytest.mark.redis
def test_a_worker_started_without_c_runs_flowrt_worker_concurrency_threads_and_prefetches_as_many(
    production,
):
    client, workers = production
    workers.env["FLOWRT_WORKER_CONCURRENCY"] = "3"
    worker = start_worker(workers, "sized")
    stats = wait_until(lambda: stats_by_cli(workers, worker.node), 30, "stats from the CLI")
    assert stats["pool"]["max-concurrency"] == 3 and stats["pool"]["threads"] == 3
    assert stats["prefetch_count"] == 3 and "autoscaler" not in stats
    assert b"concurrency: 3 (pool)" in workers.log("sized")

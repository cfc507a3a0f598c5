"""Real worker processes, beat, Redis and PostgreSQL: kill -9, frozen workers, idle unloading.

A local HTTP service stands in for the outside world: flows call it through the REST
connector, and it counts, per execution, the calls in flight at once and how often each
idempotency key came. That is how the tests see "never on two workers at once" and
"at-least-once" from outside the executions.
"""

from __future__ import annotations

import json
import random
import signal
import textwrap
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import redis
import sqlalchemy as sa
from conftest import LocalHttpServer, WorkerProcesses, reply_json, wait_until, write_flow

import flowrt
from flowrt.status import Status
from flowrt.storage.schema import executions

LEASE_S = 2.0

CALLER = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        n = this.get('input_value')['n']
        total = 0
        for i in range(n):
            answer = this.connect('svc', method='GET', path='/work', params={'i': i})
            total += answer.get('output_value')['json']['value']
            if i % 4 == 3:
                this.sleep(0.1)
        this.save(output_value={'total': total})
""")


def calls_of(n: int) -> int:
    """Savepoints a CALLER execution makes: get, n connects, the sleeps, save."""
    return 1 + n + n // 4 + 1


class Service(LocalHttpServer):
    """The outside system: answers `/work?i=N` with 2N, slowly, and watches who calls."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight: Counter[str] = Counter()
        self.most_at_once: Counter[str] = Counter()
        self.keys: Counter[str] = Counter()
        super().__init__()
        self._httpd.daemon_threads = True  # a killed worker's call may still be sleeping here
        self.start()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                key = self.headers.get("Idempotency-Key", "")
                execution = key.split(":")[0]
                with service.lock:
                    service.keys[key] += 1
                    service.in_flight[execution] += 1
                    service.most_at_once[execution] = max(
                        service.most_at_once[execution], service.in_flight[execution]
                    )
                query = parse_qs(urlparse(self.path).query)
                # A call takes a moment, so that kills hit calls in flight; "slow" ones longer.
                time.sleep(float(query.get("slow", [random.uniform(0.01, 0.05)])[0]))
                with service.lock:
                    service.in_flight[execution] -= 1
                i = int(query["i"][0])
                body = json.dumps({"value": 2 * i}).encode()
                reply_json(self, body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def service():
    running = Service()
    yield running
    running.stop()


@pytest.fixture
def cluster(flowrt_env, pg_clean, redis_url, tmp_path, service):
    """Client, worker processes and beat on PostgreSQL and Redis, with the service configured."""
    env = flowrt_env(
        FLOWRT_DATABASE_URL=pg_clean,
        FLOWRT_BROKER_URL=redis_url,
        FLOWRT_LEASE_SECONDS=str(LEASE_S),
        FLOWRT_SLEEP_MAX_SECONDS="1",
        # The kills here are the test's, not the flows': a kill that lands while a suspect
        # runs alone would count against it (see test_quarantine.py), so allow plenty.
        FLOWRT_MAX_CRASHES="50",
    )
    workers = WorkerProcesses(env, tmp_path)
    client = flowrt.default_client()
    client.set_connector("svc", "rest", base_url=service.base_url)
    try:
        workers.start_beat()
        yield client, workers
    finally:
        workers.stop_all()


def _seqs(handle) -> list[int]:
    return sorted(sp.seq for sp in handle.savepoints())


def _held_by(client, node: str) -> list[str]:
    running = [r for r in client.list_executions(500) if not r.status.ended]
    return [r.id for r in running if r.worker == node]


def _progress_after(handle, moment: datetime) -> datetime | None:
    """When the execution next stored a savepoint, or ended, after `moment`."""
    times = [sp.created_at for sp in handle.savepoints() if sp.created_at > moment]
    ended = handle.record().ended_at
    times += [ended] if ended and ended > moment else []
    return min(times, default=None)


def _check_ran_once_at_a_time(handles, service: Service, n: int, logs: str) -> None:
    for handle in handles:
        record = handle.record()
        assert record.status is Status.ENDED_SUCCESS, f"{record.id}: {record.error}\n{logs}"
        assert record.outputs == {"total": n * (n - 1)}
        assert _seqs(handle) == list(range(1, calls_of(n) + 1)), "a seq was repeated or skipped"
        assert service.most_at_once[handle.id] == 1, "two workers called out at once"
        called = [key for key in service.keys if key.startswith(handle.id)]
        assert len(called) == n  # every connect reached the service under one key each


def test_executions_survive_workers_killed_at_random_moments_and_resume_within_seconds(
    cluster, service, tmp_path
):
    client, workers = cluster
    procs = [workers.start() for _ in range(3)]
    n = 12
    flow = write_flow(tmp_path, CALLER, "caller")
    handles = [client.start(flow, {"n": n}) for _ in range(24)]
    rng = random.Random()
    kills: list[tuple[datetime, list[str]]] = []
    for _ in range(4):
        time.sleep(rng.uniform(0.3, 1.5))  # deliberate: the kill lands at a random moment
        alive = [p for p in procs if p.poll() is None]
        victim = max(alive, key=lambda p: len(_held_by(client, p.node)))
        held = _held_by(client, victim.node)
        workers.kill(victim)
        kills.append((datetime.now(UTC), held))
        procs.append(workers.start())  # a replacement joins while executions run

    stuck = []
    for handle in handles:
        try:
            handle.wait(60)
        except TimeoutError:
            stuck.append(handle.record())
    assert not stuck, (stuck, [(k[0], k[1]) for k in kills], workers.logs()[-20000:])
    _check_ran_once_at_a_time(handles, service, n, workers.logs())
    # Each execution a killed worker held went on within a few seconds (its lease, the
    # reaper's second, a replay), not after Redis's visibility timeout of an hour.
    late = []
    for killed_at, held in kills:
        for execution_id in held:
            ended_at = client.get(execution_id).record().ended_at
            if ended_at is not None and ended_at <= killed_at:
                continue  # it ended between being seen held and the kill: nothing to resume
            resumed = _progress_after(client.get(execution_id), killed_at)
            if resumed is None or resumed - killed_at > timedelta(seconds=LEASE_S + 10):
                late.append((execution_id, killed_at, resumed))
    assert not late, late
    assert sum(len(held) for _, held in kills) > 0, "no kill hit a worker holding work"
    duplicates = sum(count - 1 for count in service.keys.values())
    print(f"kills={len(kills)} held={[len(h) for _, h in kills]} repeated calls={duplicates}")


def test_a_frozen_worker_loses_its_execution_to_another_and_stores_nothing_when_it_thaws(
    cluster, service, tmp_path
):
    client, workers = cluster
    frozen = workers.start()
    n = 40
    handle = client.start(write_flow(tmp_path, CALLER, "caller"), {"n": n})
    wait_until(lambda: len(handle.savepoints()) >= 5, 60, "the execution to run on w1")
    frozen.send_signal(signal.SIGSTOP)  # its next step sits in its own queue, unrenewed
    try:
        other = workers.start()
        wait_until(lambda: handle.record().worker == other.node, 30, "a takeover by w2")
    finally:
        frozen.send_signal(signal.SIGCONT)  # the zombie wakes with stale steps in hand
    handle.wait(60)
    _check_ran_once_at_a_time([handle], service, n, workers.logs())


SLOW = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        total = 0
        for i in range(6):
            answer = this.connect('svc', method='GET', path='/work', params={'i': i, 'slow': 0.4})
            total += answer.get('output_value')['json']['value']
        this.save(output_value={'total': total})
""")


def test_a_new_worker_takes_new_work_at_once_and_a_stopping_one_hands_its_work_over(
    cluster, service, tmp_path
):
    client, workers = cluster
    busy = workers.start(concurrency=2)
    flow = write_flow(tmp_path, SLOW, "slow")
    first = [client.start(flow) for _ in range(2)]
    wait_until(lambda: len(_held_by(client, busy.node)) == 2, 30, "w1 to hold both")

    added = workers.start(concurrency=2)  # joins while w1's two threads are busy calling
    later = [client.start(flow) for _ in range(2)]
    wait_until(
        lambda: all(h.record().worker == added.node for h in later),
        30,
        "the new, least busy worker to take the new executions",
    )

    busy.terminate()  # SIGTERM: warm shutdown, the steps under way finish first
    assert busy.wait(30) == 0
    # It handed its executions to the reaper as it stopped: no lease of its still runs.
    now = datetime.now(UTC)
    for record in (h.record() for h in first):
        assert record.status.ended or record.worker != busy.node or record.lease_until <= now
    for handle in first + later:
        handle.wait(60)
        assert handle.status is Status.ENDED_SUCCESS and handle.outputs == {"total": 30}
        assert service.most_at_once[handle.id] == 1
    log = workers.log(busy.node.split("@")[0])
    assert b"Warm shutdown" in log, log[-3000:]


SLEEPER = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        this.log('short')
        this.sleep(this.get('input_value')['short'])
        this.log('long')
        this.sleep(this.get('input_value')['long'])
        this.save(output_value={'woke': True})
""")


def _broker_holds_nothing(redis_url: str, node: str) -> bool:
    """True when no step message is queued, reserved or delayed anywhere in the broker."""
    broker = redis.Redis.from_url(redis_url)
    try:
        queued = broker.llen("flowrt") + broker.llen(f"{node}.dq2")
        return queued == 0 and broker.hlen("unacked") == 0
    finally:
        broker.close()


def test_a_long_wait_is_unloaded_holds_no_message_and_beat_wakes_it_on_any_worker(
    cluster, redis_url, pg_clean, tmp_path
):
    client, workers = cluster
    first = workers.start()
    handle = client.start(write_flow(tmp_path, SLEEPER, "sleeper"), {"short": 0.5, "long": 3600})
    # A wait shorter than FLOWRT_SLEEP_MAX_SECONDS (1 s here) stays loaded on its worker.
    short = wait_until(
        lambda: (r := handle.record()).status is Status.WAITING and r.wake_at and r, 30
    )
    assert short.worker == first.node
    # The hour-long one is unloaded at once: no worker, and nothing in Redis waits for it.
    wait_until(lambda: [log.message for log in handle.logs()] == ["short", "long"], 30)
    long_wait = wait_until(
        lambda: (r := handle.record()).status is Status.WAITING and r.worker is None and r, 30
    )
    assert long_wait.wake_at > datetime.now(UTC) + timedelta(minutes=59)
    assert wait_until(lambda: _broker_holds_nothing(redis_url, first.node), 10)

    workers.stop_all()  # the worker that knew it goes away; another takes over later
    second = workers.start()
    engine = sa.create_engine(pg_clean)
    with engine.begin() as conn:  # the hour passes, as far as the execution knows
        conn.execute(
            executions.update()
            .where(executions.c.id == handle.id)
            .values(wake_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    engine.dispose()
    workers.start_beat()
    handle.wait(30)
    assert handle.status is Status.ENDED_SUCCESS and handle.outputs == {"woke": True}
    assert second.poll() is None and handle.record().worker is None
    assert b"flowrt.step" in workers.log(second.node.split("@")[0])

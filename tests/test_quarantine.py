"""Poison pills: a flow that kills its worker is quarantined, and only it.

Real worker processes on PostgreSQL and Redis, with beat, and a supervisor loop in the test
that starts a new worker whenever one dies (as compose, Kubernetes or systemd would). A
local HTTP service counts the calls that reach it, outside the executions.
"""

from __future__ import annotations

import textwrap
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from conftest import LocalHttpServer, WorkerProcesses, line_of, reply_json, wait_until, write_flow

import flowrt
from flowrt.status import Status

POISON = textwrap.dedent("""
    import os
    import flow_api

    def handler(system, this, inputs):
        this.save_dump('before the pill')
        if os.path.exists(inputs['armed']):
            os._exit(7)  # the pill
        this.save(output_value={'survived': True})
""")

HEALTHY = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        total = 0
        for i in range(12):
            this.sleep(0.1)
            total += i
        this.save(output_value={'total': total})
""")

# Makes one slow call to the service, which counts how often each bystander's call came.
BYSTANDER = textwrap.dedent("""
    import flow_api

    def handler(system, this, inputs):
        answer = this.connect('svc', method='GET', path='/slow', params=inputs)
        this.save(output_value={'answer': answer.get('output_value')['json']})
""")


class Service(LocalHttpServer):
    """Answers `/slow?s=N...` after N seconds; counts the requests per path and query."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()
        super().__init__()
        self._httpd.daemon_threads = True
        self.start()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                with service.lock:
                    service.calls[self.path] += 1
                time.sleep(float(parse_qs(urlparse(self.path).query)["s"][0]))
                body = b'{"ok": true}'
                reply_json(self, body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


class Supervisor:
    """Restarts dead workers, as a container orchestrator would, and counts the deaths."""

    def __init__(self, workers: WorkerProcesses, concurrency: int = 2) -> None:
        self.workers, self.concurrency = workers, concurrency
        self.watched = []
        self.deaths = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, count: int) -> None:
        self.watched = [self.workers.start(concurrency=self.concurrency) for _ in range(count)]
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for index, proc in enumerate(self.watched):
                if proc.poll() is not None and not self._stop.is_set():
                    self.deaths += 1
                    self.watched[index] = self.workers.start(concurrency=self.concurrency)


@pytest.fixture
def service():
    running = Service()
    yield running
    running.stop()


@pytest.fixture
def cluster(flowrt_env, pg_clean, redis_url, tmp_path, service):
    """Returns `start(max_crashes)`: a client, beat and the service's connector."""
    started: list[tuple[WorkerProcesses, Supervisor]] = []

    def start(max_crashes: int, workers_count: int = 2):
        env = flowrt_env(
            FLOWRT_DATABASE_URL=pg_clean,
            FLOWRT_BROKER_URL=redis_url,
            FLOWRT_LEASE_SECONDS="2",
            FLOWRT_MAX_CRASHES=str(max_crashes),
        )
        workers = WorkerProcesses(env, tmp_path)
        supervisor = Supervisor(workers)
        started.append((workers, supervisor))
        workers.start_beat()
        client = flowrt.default_client()
        client.set_connector("svc", "rest", base_url=service.base_url)
        return client, workers, supervisor

    try:
        yield start
    finally:
        for workers, supervisor in started:
            supervisor.stop()
            workers.stop_all()


def test_a_poison_pill_among_healthy_executions_is_quarantined_after_max_crashes_deaths(
    cluster, tmp_path
):
    client, workers, supervisor = cluster(max_crashes=3)
    armed = tmp_path / "armed"
    armed.write_text("yes")
    supervisor.start(2)
    healthy_flow = write_flow(tmp_path, HEALTHY, "healthy")
    healthy = [client.start(healthy_flow) for _ in range(6)]
    poison = client.start(write_flow(tmp_path, POISON, "poison"), {"armed": str(armed)})
    healthy += [client.start(healthy_flow) for _ in range(6)]

    record = poison.wait(120).record()
    assert record.status is Status.ENDED_ERROR, workers.logs()[-5000:]
    assert "died 3 times" in (record.message or "")
    assert "FLOWRT_MAX_CRASHES=3" in (record.message or "")
    assert record.error_line == line_of(POISON, "save_dump")
    for handle in healthy:
        done = handle.wait(120).record()
        assert done.status is Status.ENDED_SUCCESS, (done, workers.logs()[-5000:])
        assert done.outputs == {"total": 66}
    assert supervisor.deaths <= 3, supervisor.deaths
    assert supervisor.deaths >= 1

    # Quarantined, not lost: with the cause gone, a restore runs it to its end.
    armed.unlink()
    poison.restore("before the pill", by="name")
    assert poison.wait(60).status is Status.ENDED_SUCCESS
    assert poison.outputs == {"survived": True}


def test_bystanders_in_long_calls_survive_a_poison_pill_with_max_crashes_two(
    cluster, tmp_path, service
):
    client, workers, supervisor = cluster(max_crashes=2)
    armed = tmp_path / "armed"
    armed.write_text("yes")
    workers_count, concurrency = 1, 4
    supervisor.concurrency = concurrency
    supervisor.start(workers_count)  # one worker: the bystanders and the pill share it
    flow = write_flow(tmp_path, BYSTANDER, "bystander")
    bystanders = [client.start(flow, {"s": 3, "b": b}) for b in range(3)]
    wait_until(lambda: len(service.calls) == 3, 30, "the bystanders' calls to be in flight")
    poison = client.start(write_flow(tmp_path, POISON, "poison"), {"armed": str(armed)})

    record = poison.wait(120).record()
    assert record.status is Status.ENDED_ERROR, workers.logs()[-5000:]
    assert "died 2 times" in (record.message or "")
    for handle in bystanders:
        done = handle.wait(120).record()
        assert done.status is Status.ENDED_SUCCESS, (done, workers.logs()[-5000:])
        assert done.outputs == {"answer": {"ok": True}}
    assert supervisor.deaths <= 2, supervisor.deaths
    # Each call was in flight when the pill first killed their worker, so it ran again once
    # (at-least-once), and no more: after that, each suspect ran alone, so the second death
    # found no bystander's call in flight, and was the pill's alone.
    assert sorted(service.calls.values()) == [2, 2, 2], service.calls

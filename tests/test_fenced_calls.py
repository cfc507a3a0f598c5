"""Once cancel, pause or restore has returned, no call of the old timeline reaches outside.

A step already sent to the worker that holds the execution skips the database claim while
its local lease lasts; these tests hold such a step back, change the execution from outside,
then deliver it, and count the POSTs an outside server received.
"""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from conftest import SECRET, LocalHttpServer, Recorder

from flowrt.options import Options
from flowrt.runtime import Runtime
from flowrt.status import Status
from flowrt.storage import SqlStore

FLOW = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        this.log('before the charge')
        this.connect('api', method='post', path='/charge', json={'amount': 5})
        system.setting('charged').save(value=True)
        this.success('charged')
""")


class CountingServer(LocalHttpServer):
    """The outside system: counts the POSTs it receives."""

    def __init__(self) -> None:
        self.posts = 0
        self._lock = threading.Lock()
        super().__init__()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server._lock:
                    server.posts += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def outside() -> Iterator[CountingServer]:
    server = CountingServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def worker(store: SqlStore, outside: CountingServer) -> Iterator[tuple[Runtime, Recorder]]:
    """A worker runtime, its step messages kept for the test to deliver, on SQLite and PG."""
    recorder = Recorder()
    runtime = Runtime(store, Options(secret=SECRET.encode()), recorder, worker="w1")
    store.put_named("connector", "api", {"type": "rest", "base_url": outside.base_url})
    yield runtime, recorder
    runtime.close()


def _parked_at_the_charge(runtime: Runtime, recorder: Recorder) -> str:
    """Start the flow and step it until its POST is the pending call of a step sent to w1."""
    record = runtime.start("charge", FLOW)
    recorder.deliver(runtime)  # start: parks at log
    recorder.deliver(runtime)  # log: parks at connect, its step sent to this worker
    [(ticket, worker)] = recorder.sent
    assert ticket.call == "connect" and worker == "w1"
    return record.id


def _deliver_all(runtime: Runtime, recorder: Recorder) -> None:
    while recorder.sent:
        recorder.deliver(runtime)


def test_a_step_already_sent_performs_no_call_after_cancel_returned(worker, outside, store):
    runtime, recorder = worker
    execution_id = _parked_at_the_charge(runtime, recorder)
    [cancelled] = runtime.cancel(execution_id)
    assert cancelled.status is Status.ENDED_CANCELLED
    _deliver_all(runtime, recorder)
    assert outside.posts == 0
    assert store.get_named("setting", "charged") is None
    assert store.get_execution(execution_id).status is Status.ENDED_CANCELLED


def test_a_step_already_sent_performs_no_call_after_pause_returned_and_resume_performs_it(
    worker, outside, store
):
    runtime, recorder = worker
    execution_id = _parked_at_the_charge(runtime, recorder)
    assert runtime.pause(execution_id).status is Status.PAUSED
    _deliver_all(runtime, recorder)
    assert outside.posts == 0 and store.get_execution(execution_id).status is Status.PAUSED
    runtime.resume(execution_id)
    _deliver_all(runtime, recorder)
    assert outside.posts == 1
    assert store.get_execution(execution_id).status is Status.ENDED_SUCCESS


def test_a_step_already_sent_performs_no_call_after_restore_returned_only_the_new_timeline_does(
    worker, outside, store
):
    runtime, recorder = worker
    execution_id = _parked_at_the_charge(runtime, recorder)
    first = store.list_savepoints(execution_id)[0]
    runtime.restore(execution_id, first.id)
    stale, restored = (ticket for ticket, _ in recorder.sent)
    assert stale.version < restored.version
    recorder.deliver(runtime)  # the step of the old timeline
    assert outside.posts == 0
    _deliver_all(runtime, recorder)
    assert outside.posts == 1  # the restored timeline's own call, once
    assert store.get_execution(execution_id).status is Status.ENDED_SUCCESS


def test_confirm_holds_an_execution_at_its_version_and_refuses_once_it_moved_on(store):
    record = store.create_execution("f", "def handler(system, this):\n    pass\n", {})
    now = datetime.now(UTC)
    lease = now + timedelta(seconds=10)
    assert store.confirm(record.id, 0, "w1", now, lease)
    held = store.get_execution(record.id)
    assert held.worker == "w1" and held.lease_until == lease and held.version == 0
    assert not store.confirm(record.id, 0, "w2", now, lease)  # w1's lease runs
    assert store.confirm(record.id, 0, "w2", lease + timedelta(seconds=1), lease)  # it ran out
    assert not store.confirm(record.id, 1, "w2", now, lease)  # not at that version
    store.set_status(record.id, Status.PAUSED, {Status.RUNNING})
    assert not store.confirm(record.id, 1, "w2", now, lease)  # paused

"""A restore is a new attempt at its savepoint's call: a new child, a new idempotency key.

A step run again after a crash is the same attempt: it finds its child and keeps its key.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET, LocalHttpServer, Recorder, write_flow

from flowrt.options import Options
from flowrt.runtime import Runtime
from flowrt.status import Status
from flowrt.storage import SqlStore, StepCommit, open_store

FLAKY_CHILD = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        attempts = system.setting('attempts')
        seen = attempts.get('value') if attempts.exists() else 0
        attempts.save(value=seen + 1)
        if seen == 0:
            this.error('the first attempt fails')
        this.save(output_value={'attempt': seen + 1})
""")

PARENT = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        child = this.flow('flaky')
        this.save(output_value={'child': child.id, 'out': child.get('output_value')})
""")


def test_restoring_the_savepoint_of_this_flow_starts_a_new_child_and_keeps_the_old_one(
    client, tmp_path: Path
):
    client.register_flow("flaky", write_flow(tmp_path, FLAKY_CHILD, "flaky"))
    parent = client.start(write_flow(tmp_path, PARENT, "parent")).wait(30)
    assert parent.status is Status.ENDED_ERROR
    assert "ended ENDED_ERROR" in parent.record().message
    [call] = [sp for sp in parent.savepoints() if sp.call == "flow"]
    [failed] = parent.children()

    parent.restore(call.id).wait(30)

    assert parent.status is Status.ENDED_SUCCESS, parent.record().error
    first, second = parent.children()
    assert first.id == failed.id and first.status is Status.ENDED_ERROR  # its history stays
    assert second.status is Status.ENDED_SUCCESS and second.outputs == {"attempt": 2}
    assert parent.outputs == {"child": second.id, "out": {"attempt": 2}}
    assert client.get_setting("attempts") == 2  # counted outside: each child ran once

    # A step of the restored call that runs again (a crash) finds the same new child.
    call = next(sp for sp in parent.savepoints() if sp.id == call.id)

    class AtCall:  # what start_child needs of a live execution: its id and its call's head
        execution_id = parent.id
        head = call

    again = client.runtime.start_child(AtCall(), "flaky", None)  # type: ignore[arg-type]
    assert again.id == second.id and len(parent.children()) == 2


CHARGE = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        this.connect('api', method='post', path='/charge', json={'amount': 5})
        this.error('charged; ended ENDED_ERROR so that it can be restored')
""")


class KeyServer(LocalHttpServer):
    """The outside system: counts POSTs and keeps the Idempotency-Key each one came with."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        super().__init__()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.keys.append(self.headers.get("Idempotency-Key", ""))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def key_server() -> Iterator[KeyServer]:
    server = KeyServer()
    server.start()
    yield server
    server.stop()


class WorkerDied(BaseException):
    """Stands in for a worker killed after its call was performed, before its commit."""


class DyingStore(SqlStore):
    """A real SQL store whose next step commit dies, once, when `die_once` is set."""

    die_once = False

    def commit_step(self, commit: StepCommit) -> bool:
        if self.die_once:
            self.die_once = False
            raise WorkerDied
        return super().commit_step(commit)


def test_a_call_run_again_after_a_crash_keeps_its_key_and_a_restored_call_gets_a_new_one(
    tmp_path: Path, key_server: KeyServer
):
    store = open_store(f"sqlite:///{tmp_path / 'rt.db'}")
    store.__class__ = DyingStore
    recorder = Recorder()
    runtime = Runtime(store, Options(secret=SECRET.encode()), recorder, worker="w1")
    try:
        store.put_named("connector", "api", {"type": "rest", "base_url": key_server.base_url})
        record = runtime.start("charge", CHARGE)
        recorder.deliver(runtime)  # parks at connect, savepoint #1
        ticket, _ = recorder.sent[0]
        store.die_once = True
        with pytest.raises(WorkerDied):
            recorder.deliver(runtime)  # performs the POST, dies before storing it
        runtime.step(ticket.execution_id, ticket.version, ticket.head_id)  # run again
        while recorder.sent:
            recorder.deliver(runtime)
        assert store.get_execution(record.id).status is Status.ENDED_ERROR
        [connect] = [sp for sp in store.list_savepoints(record.id) if sp.call == "connect"]
        assert key_server.keys == [f"{record.id}:{connect.id}"] * 2

        for attempt in (1, 2):
            runtime.restore(record.id, connect.id)
            while recorder.sent:
                recorder.deliver(runtime)
            assert store.get_execution(record.id).status is Status.ENDED_ERROR
            assert key_server.keys[-1] == f"{record.id}:{connect.id}:{attempt}"
        assert len(key_server.keys) == 4 and len(set(key_server.keys)) == 3
    finally:
        runtime.close()
        store.close()

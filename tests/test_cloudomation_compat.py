"""Flows written the way Cloudomation's library flows are (tests/flows/cloudomation/) run to
their end on real Celery workers, PostgreSQL and Redis: inline REST tasks and a stored
connector, INPUT questions and forms answered by an operator through `flowrt respond`, keyword
inputs and names of children created with run=False and run in the background, set_output,
load of several fields, structured logs, and a setting counted under its lock by two
executions at once.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from conftest import FLOWS, LocalHttpServer, WorkerProcesses, reply_json, wait_until
from test_cli import flowrt_process

from flowrt.client import Client, Handle
from flowrt.status import Status
from flowrt.storage import MessageRecord

LIBRARY = FLOWS / "cloudomation"
TOKEN = "tok-0a1b2c3d4e5f"
COUNTRIES = {
    "Austria": {"capital": "Vienna", "population": 9_100_000, "neighbours": ["CZ", "DE"]},
}


class CountryServer(LocalHttpServer):
    """A country service that wants the token, and counts what it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                server.paths.append(self.path)
                parts = self.path.strip("/").split("/")
                country = COUNTRIES.get(parts[1]) if len(parts) > 1 else None
                if self.headers.get("Authorization") != f"token {TOKEN}" or country is None:
                    reply_json(self, b'{"error": "no"}', 404)
                    return
                body = country["neighbours"] if parts[-1] == "neighbours" else country
                reply_json(self, json.dumps(body).encode())

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def countries() -> Any:
    server = CountryServer()
    server.start()
    yield server
    server.stop()


def _asked(handle: Handle, count: int = 1) -> list[MessageRecord]:
    def pending() -> list[MessageRecord] | None:
        waiting = handle.record().status is Status.WAITING
        found = [m for m in handle.messages() if m.responded_at is None]
        return found if waiting and len(found) == count else None

    return wait_until(pending, 60, f"execution {handle.id} to ask")  # type: ignore[return-value]


def _respond(workers: WorkerProcesses, message: MessageRecord, response: Any) -> None:
    answered = flowrt_process(
        workers.env, "respond", message.id, "--response", json.dumps(response)
    )
    assert answered.returncode == 0, answered.stderr


def _ended(handle: Handle, workers: WorkerProcesses) -> Handle:
    handle.wait(90)
    assert handle.status.ended, workers.logs()
    return handle


@pytest.mark.postgres
@pytest.mark.redis
def test_library_style_flows_run_to_their_end_on_real_workers(
    production: tuple[Client, WorkerProcesses], countries: CountryServer, tmp_path: Path
) -> None:
    client, workers = production
    workers.start(concurrency=2)
    workers.start(concurrency=2)
    workers.start_beat()
    client.set_setting("country_service", {"url": countries.base_url, "token": TOKEN})
    client.set_connector(
        "countries",
        "rest",
        base_url=countries.base_url,
        headers={"Authorization": f"token {TOKEN}"},
    )
    client.register_flow("region_report", LIBRARY / "region_report.py")

    # An INPUT question answered by an operator, an inline REST task, a stored connector.
    info = client.start(str(LIBRARY / "country_info.py"))
    [question] = _asked(info)
    assert question.subject == "Which country would you like to learn about?"
    _respond(workers, question, {"response": "Austria"})
    record = _ended(info, workers).record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs == {
        "country": "Austria",
        "capital": "Vienna",
        "neighbours": ["CZ", "DE"],
    }
    assert countries.paths == ["/countries/Austria", "/countries/Austria/neighbours"]
    assert [line.message for line in info.logs()] == [
        'country="Austria"',
        'capital="Vienna" population=9100000',
    ]

    # Children created with run=False, keyword inputs and names, run in the background, one
    # failing, waited for with ALL_ENDED, read with load().
    fan_out = client.start(
        str(LIBRARY / "regions.py"), {"regions": ["eu", "us", "nowhere"]}, name="regions"
    )
    record = _ended(fan_out, workers).record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs == {
        "reports": [{"region": "eu", "servers": 2}, {"region": "us", "servers": 4}],
        "failed": ["region 3"],
    }
    names = sorted(child.record().display_name for child in fan_out.children())
    assert names == ["region 3", "report eu", "report us"]  # renamed by this.save(name=)

    # Two approvals at once on two workers: forms answered through the CLI, the count kept
    # under the setting's lock; a third is refused by its approver.
    deploys = [
        client.start(str(LIBRARY / "approve_deploy.py"), {"version": v}) for v in ("1.1", "1.2")
    ]
    refused = client.start(str(LIBRARY / "approve_deploy.py"), {"version": "0.9"})
    for handle in deploys:
        [form] = _asked(handle)
        assert form.body["required"] == ["approver"]
        _respond(workers, form, {"approver": "Ann", "approve": True})
    [form] = _asked(refused)
    _respond(workers, form, {"approver": "Bob"})
    for handle in deploys:
        record = _ended(handle, workers).record()
        assert record.status is Status.ENDED_SUCCESS, record.error
    assert sorted(h.outputs["deployment"] for h in deploys) == [1, 2]
    assert client.get_setting("deployments") == 2
    record = _ended(refused, workers).record()
    assert record.status is Status.ENDED_CANCELLED and record.message == "Bob did not approve"
    assert TOKEN not in workers.logs()

"""The web view's JSON API and pages, through HTTP, on SQLite and on PostgreSQL with workers."""

from __future__ import annotations

import base64
import os
import re
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from flowrt.cli import cli
from flowrt.client import Client
from flowrt.web import api as api_routes
from flowrt.web import create_app
from flowrt.web import pages as page_routes
from tests.conftest import ROOT, line_of, wait_until, write_flow

FLOW = textwrap.dedent(
    """
    def handler(system, this):
        orders = this.get('input_value').get('orders', 3)
        total = orders * 10
        this.log('counted', orders=orders)
        this.save_dump('before-check')
        if not system.setting('go').exists():
            raise RuntimeError(f'not ready to ship {total}')
        this.save(output_value={'total': total})
    """
)
SECRET_PASSWORD = "pw-never-shown-4711"
USERS = [("ops", "s3cret-web")]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def flowrt_client(request: pytest.FixtureRequest) -> Iterator[Client]:
    """The embedded client on SQLite, or the production client with two real workers."""
    if request.param == "sqlite":
        yield request.getfixturevalue("client")
        return
    client, workers = request.getfixturevalue("production")
    workers.start()
    yield client


@pytest.fixture
def api(flowrt_client: Client) -> TestClient:
    """The web application on the test's client, without auth, as a browser on it sees it."""
    return TestClient(create_app(flowrt_client, users=[]))


def start_failing(client: Client, tmp_path: Path, orders: int = 3) -> str:
    """Run FLOW until it ends ENDED_ERROR at the setting's check; its execution id."""
    handle = client.start(write_flow(tmp_path, FLOW, "shipping"), {"orders": orders})
    handle.wait(60)
    assert handle.status.value == "ENDED_ERROR"
    return handle.id


def post(api: TestClient, path: str, body: Any = None) -> httpx.Response:
    """POST `body` as JSON, as the page does."""
    return api.post(path, json={} if body is None else body)


def test_list_filters_pages_and_counts(api: TestClient, flowrt_client: Client, tmp_path: Path):
    failed = [start_failing(flowrt_client, tmp_path, n) for n in (1, 2, 3)]
    flowrt_client.set_setting("go", True)
    ok = flowrt_client.start(write_flow(tmp_path, FLOW, "shipping"), {"orders": 4}).wait(60)

    listed = api.get("/api/executions").json()
    assert listed["total"] == 4
    assert listed["counts"] == {"ENDED_ERROR": 3, "ENDED_SUCCESS": 1}
    assert [e["id"] for e in listed["items"]] == [ok.id, *reversed(failed)]  # newest first
    head = listed["items"][1]["last_savepoint"]
    assert head["call"] == "setting.exists" or head["call"].startswith("setting")
    errors = api.get("/api/executions", params={"status": "ENDED_ERROR", "limit": 2}).json()
    assert errors["total"] == 3 and [e["id"] for e in errors["items"]] == failed[:0:-1]
    second = api.get("/api/executions", params={"status": "ENDED_ERROR", "offset": 2}).json()
    assert [e["id"] for e in second["items"]] == [failed[0]]
    assert api.get("/api/executions", params={"flow": "nothing"}).json()["total"] == 0
    assert api.get("/api/executions", params={"flow": "shipping"}).json()["total"] == 4
    by_prefix = api.get("/api/executions", params={"search": failed[1][:-3]}).json()
    assert [e["id"] for e in by_prefix["items"]] == [failed[1]]
    whole = api.get("/api/executions", params={"search": failed[2].upper()}).json()
    assert [e["id"] for e in whole["items"]] == [failed[2]]
    for junk in ("%", "_", "zz", "' or 1=1 --"):
        assert api.get("/api/executions", params={"search": junk}).json()["total"] == 0

    for bad in ({"status": "DONE"}, {"limit": -1}, {"limit": 10**6}, {"offset": "x"}):
        answer = api.get("/api/executions", params=bad)
        assert answer.status_code == 400, bad
        assert isinstance(answer.json()["detail"], str) and answer.json()["detail"]

    page = api.get("/", params={"status": "ENDED_ERROR"})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert all(i in page.text for i in failed) and ok.id not in page.text
    assert "before-check" in page.text or "setting" in page.text


def test_one_execution_its_savepoints_and_logs(
    api: TestClient, flowrt_client: Client, tmp_path: Path
):
    execution_id = start_failing(flowrt_client, tmp_path)
    shown = api.get(f"/api/executions/{execution_id}").json()
    assert shown["status"] == "ENDED_ERROR" and shown["ended"] is True
    assert "not ready to ship 30" in shown["error"]
    assert shown["error_line"] == line_of(FLOW, "raise RuntimeError")
    assert shown["inputs"] == {"orders": 3} and shown["source"] == FLOW
    assert "signature" not in shown

    savepoints = api.get(f"/api/executions/{execution_id}/savepoints").json()
    items = savepoints["items"]
    assert savepoints["total"] == len(items) == len(flowrt_client.get(execution_id).savepoints())
    named = [sp for sp in items if sp["name"] == "before-check"]
    assert len(named) == 1
    assert named[0]["line"] == line_of(FLOW, "save_dump")
    assert {"orders": "3", "total": "30"}.items() <= _plain(named[0]["variables"]).items()
    assert set(items[0]) >= {"seq", "id", "name", "call", "line", "created_at", "variables"}
    assert all(sp["current"] for sp in items) and items[-1]["head"]
    window = api.get(f"/api/executions/{execution_id}/savepoints", params={"limit": 1, "offset": 1})
    assert [sp["id"] for sp in window.json()["items"]] == [items[1]["id"]]

    logs = api.get(f"/api/executions/{execution_id}/logs").json()
    assert [(log["line"], log["message"]) for log in logs["items"]] == [
        (line_of(FLOW, "this.log"), "counted orders=3")
    ]

    page = api.get(f"/executions/{execution_id}")
    assert page.status_code == 200
    assert "before-check" in page.text and "counted orders=3" in page.text
    assert "not ready to ship 30" in page.text


def _plain(variables: dict[str, Any]) -> dict[str, str]:
    return {k: str(v).strip("'") for k, v in (variables or {}).items()}


def test_unknown_ids_and_malformed_input_are_4xx_with_a_clear_text(
    api: TestClient, flowrt_client: Client, tmp_path: Path
):
    execution_id = start_failing(flowrt_client, tmp_path)
    for missing in ("00000000-0000-0000-0000-000000000000", "not-an-id", "%20"):
        for path in ("", "/savepoints", "/logs"):
            answer = api.get(f"/api/executions/{missing}{path}")
            assert answer.status_code == 404, (missing, path)
            assert "execution" in answer.json()["detail"]
        assert post(api, f"/api/executions/{missing}/pause").status_code == 404
    assert api.get("/executions/not-an-id").status_code == 404

    restore = f"/api/executions/{execution_id}/restore"
    malformed = api.post(
        restore, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400 and "not valid JSON" in malformed.json()["detail"]
    for body in ({}, {"ref": ""}, {"ref": "x", "by": "seq"}, ["x"], "x", {"ref": 5}):
        answer = post(api, restore, body)
        assert answer.status_code == 400, body
        assert answer.json()["detail"]
    unknown = post(api, restore, {"ref": "no-such-name", "by": "name"})
    assert unknown.status_code == 404 and "no-such-name" in unknown.json()["detail"]
    respond = post(api, "/api/messages/00000000-0000-0000-0000-000000000000/respond", {"a": 1})
    assert respond.status_code == 404 and "flowrt messages" in respond.json()["detail"]
    assert flowrt_client.get(execution_id).status.value == "ENDED_ERROR"  # nothing changed


def test_restore_by_name_through_the_api_runs_it_to_success(
    api: TestClient, flowrt_client: Client, tmp_path: Path
):
    execution_id = start_failing(flowrt_client, tmp_path)
    flowrt_client.set_setting("go", True)
    answer = post(
        api, f"/api/executions/{execution_id}/restore", {"ref": "before-check", "by": "name"}
    )
    assert answer.status_code == 200, answer.text
    handle = flowrt_client.get(execution_id).wait(60)
    assert handle.status.value == "ENDED_SUCCESS" and handle.outputs == {"total": 30}
    shown = api.get(f"/api/executions/{execution_id}/savepoints").json()["items"]
    assert [sp["restored"] for sp in shown if sp["name"] == "before-check"] == [1]
    assert any(not sp["current"] for sp in shown)  # the failed branch, left behind
    page = api.get(f"/executions/{execution_id}").text
    assert "restored 1×" in page and "ENDED_SUCCESS" in page


def _cli_refusal(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is not None, result.output
    return str(result.exception)


def test_actions_refused_with_the_same_text_as_the_cli(
    api: TestClient, flowrt_client: Client, tmp_path: Path
):
    execution_id = start_failing(flowrt_client, tmp_path)
    flowrt_client.set_setting("go", True)
    done = flowrt_client.start(write_flow(tmp_path, FLOW, "shipping"), {}).wait(60).id
    first = flowrt_client.get(done).savepoints()[0].id
    cases = [
        ("pause", done, None, ("pause", done)),
        ("resume", done, None, ("resume", done)),
        ("resume", execution_id, None, ("resume", execution_id)),
        ("restore", done, {"ref": first}, ("restore", done, first)),
    ]
    for action, target, body, cli_args in cases:
        answer = post(api, f"/api/executions/{target}/{action}", body)
        assert answer.status_code == 409, (action, answer.text)
        assert answer.json()["detail"] == _cli_refusal(*cli_args)

    assert post(api, f"/api/executions/{done}/archive").json()["archived_at"]
    assert api.get(f"/api/executions/{done}/savepoints").json()["total"] == 0
    archived = post(api, f"/api/executions/{done}/restore", {"ref": first})
    assert archived.status_code == 409 and archived.json()["detail"] == _cli_refusal(
        "restore", done, first
    )


def test_pause_resume_and_cancel_a_waiting_execution(
    api: TestClient, flowrt_client: Client, tmp_path: Path
):
    sleeper = "def handler(system, this):\n    this.sleep(3600)\n"
    handle = flowrt_client.start(write_flow(tmp_path, sleeper, "sleeper"))
    wait_until(lambda: handle.status.value == "WAITING", 60, "the flow sleeps")
    base = f"/api/executions/{handle.id}"
    assert post(api, f"{base}/pause").json()["status"] == "PAUSED"
    assert post(api, f"{base}/pause").status_code == 409
    assert post(api, f"{base}/resume").json()["status"] in ("RUNNING", "WAITING")
    cancelled = post(api, f"{base}/cancel").json()
    assert cancelled["status"] == "ENDED_CANCELLED" and cancelled["cancelled_children"] == 0
    assert post(api, f"{base}/cancel").status_code == 409


def test_writes_must_be_json_and_same_origin(api: TestClient, flowrt_client: Client, tmp_path):
    execution_id = start_failing(flowrt_client, tmp_path)
    flowrt_client.set_setting("go", True)
    restore = f"/api/executions/{execution_id}/restore"
    form = api.post(restore, data={"ref": "before-check", "by": "name"})
    assert form.status_code == 415 and "application/json" in form.json()["detail"]
    for kind in ("text/plain", "multipart/form-data; boundary=x", None):
        headers = {"content-type": kind} if kind else {}
        answer = api.post(
            restore, content=b'{"ref": "before-check", "by": "name"}', headers=headers
        )
        assert answer.status_code == 415, kind
    cross = api.post(
        restore,
        json={"ref": "before-check", "by": "name"},
        headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
    )
    assert cross.status_code == 403
    other_origin = api.post(restore, json={"ref": "x"}, headers={"origin": "https://evil.example"})
    assert other_origin.status_code == 403
    preflight = api.options(
        restore,
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert preflight.status_code == 405
    assert not any(h.startswith("access-control") for h in preflight.headers)
    assert flowrt_client.get(execution_id).status.value == "ENDED_ERROR"  # none got through


def _routes(app: Any, execution_id: str, savepoint_id: str) -> list[tuple[str, str]]:
    """Every (method, path) the application serves, with the test's ids filled in."""
    found = []
    for route in [*app.app.routes, *api_routes.router.routes, *page_routes.router.routes]:
        if not hasattr(route, "path"):
            continue  # an included router: its routes are listed themselves
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            path = route.path.replace("{execution_id}", execution_id)
            path = path.replace("{message_id}", savepoint_id)
            found.append((method, path))
    return found


def test_basic_auth_is_required_on_every_route(flowrt_client: Client, tmp_path: Path):
    execution_id = start_failing(flowrt_client, tmp_path)
    savepoint_id = flowrt_client.get(execution_id).savepoints()[0].id
    app = create_app(flowrt_client, users=[("ops", "s3cret-web"), ("dev", "other:pw")])
    web = TestClient(app)
    routes = _routes(app, execution_id, savepoint_id)
    paths = {path for _, path in routes}
    assert {"/", "/api/openapi.json", f"/api/executions/{execution_id}/restore"} <= paths
    wrong = [
        {},
        {"authorization": "Basic " + base64.b64encode(b"ops:wrong").decode()},
        {"authorization": "Basic " + base64.b64encode(b"ops").decode()},
        {"authorization": "Basic !!!"},
        {"authorization": "Bearer s3cret-web"},
        {"authorization": "Basic " + base64.b64encode(b"dev:s3cret-web").decode()},
    ]
    for method, path in [*routes, ("GET", "/no-such-page"), ("OPTIONS", "/api/executions")]:
        for headers in wrong:
            answer = web.request(
                method, path, headers=headers, json={} if method == "POST" else None
            )
            assert answer.status_code == 401, (method, path, headers)
            assert answer.headers["www-authenticate"].startswith("Basic")
    for user, password in (("ops", "s3cret-web"), ("dev", "other:pw")):
        answer = web.get("/api/openapi.json", auth=(user, password))
        assert answer.status_code == 200
    assert flowrt_client.get(execution_id).status.value == "ENDED_ERROR"


def test_openapi_document_lists_the_api(api: TestClient):
    document = api.get("/api/openapi.json").json()
    assert set(document["paths"]) >= {
        "/api/executions",
        "/api/executions/{execution_id}",
        "/api/executions/{execution_id}/savepoints",
        "/api/executions/{execution_id}/logs",
        "/api/executions/{execution_id}/restore",
        "/api/executions/{execution_id}/pause",
        "/api/executions/{execution_id}/resume",
        "/api/executions/{execution_id}/cancel",
        "/api/executions/{execution_id}/archive",
        "/api/messages",
        "/api/messages/{message_id}/respond",
    }
    assert not any(path == "/" or path.startswith("/executions") for path in document["paths"])


def test_no_connector_secret_in_any_response(
    api: TestClient, flowrt_client: Client, tmp_path: Path
):
    url = f"postgresql+psycopg://ops:{SECRET_PASSWORD}@127.0.0.1:1/nothing"
    flowrt_client.set_connector("vault", "sql", url=url)
    source = textwrap.dedent(
        """
        def handler(system, this):
            conf = system.connection('vault').get('value')
            this.log('using', conf=conf)
            this.save_dump('with-conf')
            raise RuntimeError(f'failed with {conf}')
        """
    )
    handle = flowrt_client.start(write_flow(tmp_path, source, "vaulted"))
    handle.wait(60)
    base = f"/api/executions/{handle.id}"
    for path in (
        "/api/executions",
        base,
        f"{base}/savepoints",
        f"{base}/logs",
        "/",
        f"/executions/{handle.id}",
    ):
        answer = api.get(path)
        assert answer.status_code == 200, path
        assert SECRET_PASSWORD not in answer.text, (path, answer.text)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _flowrt(*args: str) -> list[str]:
    return [sys.executable, "-c", "from flowrt.cli import main; main()", *args]


def test_flowrt_web_refuses_a_public_address_without_credentials(client: Client):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("FLOWRT_WEB_AUTH", None)
    for host in ("0.0.0.0", "::", "192.0.2.1", "example.com"):
        done = subprocess.run(
            _flowrt("web", "--host", host, "--port", "1"),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert "FLOWRT_WEB_AUTH" in done.stderr and host in done.stderr
    bad = subprocess.run(
        _flowrt("web"),
        env={**env, "FLOWRT_WEB_AUTH": "justauser"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "user:password" in bad.stderr


def test_flowrt_web_serves_with_basic_auth(client: Client, tmp_path: Path):
    execution_id = start_failing(client, tmp_path)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FLOWRT_WEB_AUTH": "ops:s3cret-web"}
    server = subprocess.Popen(
        _flowrt("web", "--port", str(port)), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(base + "/").status_code == 401
            except httpx.TransportError:
                return False

        wait_until(up, 60, "flowrt web listens")
        shown = httpx.get(f"{base}/api/executions/{execution_id}", auth=("ops", "s3cret-web"))
        assert shown.status_code == 200 and shown.json()["status"] == "ENDED_ERROR"
        page = httpx.get(base + "/", auth=("ops", "s3cret-web"))
        assert page.status_code == 200 and execution_id in page.text
        assert not re.search(r"https?://(?!127\.0\.0\.1)", page.text)  # nothing from the internet
    finally:
        server.terminate()
        server.wait(30)


def test_a_long_history_is_shown_a_window_at_a_time(
    api: TestClient, flowrt_client: Client, tmp_path: Path
):
    source = "def handler(system, this):\n    for i in range(450):\n        this.save_dump()\n"
    handle = flowrt_client.start(write_flow(tmp_path, source, "long")).wait(120)
    total = len(handle.savepoints())
    assert total >= 450
    page = api.get(f"/executions/{handle.id}").text
    assert page.count('class="sp') == 200 and f"{total} in all" in page
    assert f"?sp_offset={total - 400}" in page and "?sp_offset=0" in page  # earlier, first
    first = api.get(f"/executions/{handle.id}", params={"sp_offset": 0}).text
    assert first.count('class="sp') == 200 and "?sp_offset=200" in first
    tail = api.get(f"/api/executions/{handle.id}/savepoints", params={"offset": total - 1})
    assert [sp["head"] for sp in tail.json()["items"]] == [True]

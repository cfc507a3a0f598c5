"""Flower as the production topology starts it: no login, no access; and it shows the steps.

Each test runs a real `celery -A tasks flower` process on the test Redis.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import tornado.web
from conftest import ROOT, wait_until, write_flow
from flower.urls import handlers

import flowrt
from flowrt.status import Status
from flowrt.web.views import flower_search

pytestmark = pytest.mark.redis

USER, PASSWORD = "operator", "flower-test-password-4711"
# Flower serves these without a login (Flower 2.2): a liveness probe, and Prometheus
# metrics (task names, counts, worker names).
OPEN_PATHS = {"/healthcheck", "/metrics"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Flower:
    """A `celery -A tasks flower` process on 127.0.0.1 and a free port."""

    def __init__(self, env: dict[str, str], log: Path, login: str) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        arguments = [f"--port={self.url.rsplit(':', 1)[1]}", "--address=127.0.0.1"]
        env = {k: v for k, v in env.items() if not k.startswith("FLOWER_")}
        if login == "command line":
            arguments.append(f"--basic-auth={USER}:{PASSWORD}")
        else:  # as docker-compose.yml gives it
            env["FLOWER_BASIC_AUTH"] = f"{USER}:{PASSWORD}"
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "tasks", "flower", *arguments],
                cwd=ROOT,
                env={**env, "PYTHONHASHSEED": "0"},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.http = httpx.Client(base_url=self.url, timeout=10)
        wait_until(self._listening, 20, "flower to listen")

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"flower exited {self.proc.returncode}:\n{self.log.read_text()}")
        try:
            return self.http.get("/healthcheck", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def request(self, method: str, path: str, auth: tuple[str, str] | None = None) -> int:
        return self.http.request(method, path, auth=auth).status_code

    def stop(self) -> None:
        """Kill the process: Flower keeps nothing (no --persistent) that a clean stop would save."""
        self.http.close()
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def start_flower(tmp_path: Path) -> Iterator[Callable[..., Flower]]:
    """Start Flower with `env` and the login given on its command line or in FLOWER_BASIC_AUTH."""
    started: list[Flower] = []

    def start(env: dict[str, str], login: str = "command line") -> Flower:
        started.append(Flower(env, tmp_path / f"flower-{len(started)}.log", login))
        return started[-1]

    yield start
    for flower in started:
        flower.stop()


def routes() -> list[tuple[str, str]]:
    """(method, path) of every page and API of Flower, a sample value in each URL pattern."""
    found = []
    for handler in handlers:
        pattern, cls = (
            (handler.regex.pattern, handler.handler_class)
            if hasattr(handler, "regex")
            else handler[:2]
        )
        path = re.sub(r"\(\.[+*]\)", "nobody", pattern.rstrip("$"))
        if path.startswith(("/static/", "/login", "/logout")) or path == ".*":
            continue  # files of the UI, and the OAuth pages (unused with basic auth)
        method = "GET" if cls.get is not tornado.web.RequestHandler.get else "POST"
        found.append((method, path))
    return found


def test_flower_sees_every_route_it_serves() -> None:
    # The check below is only as good as this list: it must hold the pages and the API.
    paths = {path for _, path in routes()}
    assert {"/", "/tasks", "/api/workers", "/api/tasks", "/api/worker/shutdown/nobody"} <= paths
    assert ("POST", "/api/task/revoke/nobody") in routes()


@pytest.mark.parametrize("login", ["command line", "FLOWER_BASIC_AUTH"])
def test_flower_is_not_reachable_without_its_credentials(
    start_flower, flowrt_env, redis_url, login
) -> None:
    flower = start_flower({**os.environ, **flowrt_env(FLOWRT_BROKER_URL=redis_url)}, login)
    for method, path in routes():
        if path in OPEN_PATHS:
            continue
        for what, auth in {"no login": None, "a wrong password": (USER, PASSWORD + "x")}.items():
            status = flower.request(method, path, auth)
            assert status == 401, f"{method} {path} with {what}: {status}"
    for auth in [("admin", PASSWORD), (USER, ""), (PASSWORD, USER), (USER, PASSWORD.upper())]:
        assert flower.request("GET", "/api/workers", auth) == 401, auth
    bearer = flower.http.get("/api/workers", headers={"Authorization": f"Bearer {PASSWORD}"})
    assert bearer.status_code == 401
    for path in ("/", "/tasks", "/api/workers", "/api/tasks"):
        assert flower.request("GET", path, (USER, PASSWORD)) == 200, path
    # What README's "Production topology" says answers anyone: if Flower starts asking for
    # the login there too, say so there.
    for path in OPEN_PATHS:
        assert flower.request("GET", path) == 200, path


SHOWN_FLOW = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        for _ in range(3):
            this.get('status')
        this.success('shown')
""")


@pytest.mark.postgres
def test_flower_shows_the_steps_of_an_execution(start_flower, production, tmp_path) -> None:
    client, workers = production
    flower = start_flower(workers.env)
    # A worker as docker-compose.yml runs it, with the event dispatcher Flower switches on.
    workers.start("shown", concurrency=2, events=True)
    # Flower switches task events on at the workers every 5 s; the worker says so.
    wait_until(lambda: b"enabled by remote" in workers.log("shown"), 15, "flower to enable events")
    handle = flowrt.start(write_flow(tmp_path, SHOWN_FLOW, name="shown_in_flower"))
    handle.wait(30)
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    flow = handle.record().flow_name
    name = re.compile(rf"flowrt\.step {re.escape(flow)} (\w+)")

    def steps_shown() -> dict[tuple[int, str], dict]:
        tasks = flower.http.get("/api/tasks", auth=(USER, PASSWORD)).json()
        shown = {}
        for task in tasks.values():
            match = name.fullmatch(task.get("name") or "")
            seq = re.search(r"'seq': (\d+)", task.get("kwargs") or "")
            if match and seq and task.get("state") == "SUCCESS":
                shown[int(seq[1]), match[1]] = task
        return shown

    calls = {(p.seq, p.call) for p in handle.savepoints()}
    wait_until(lambda: calls <= set(steps_shown()), 10, "flower to list every step")
    assert {task["worker"] for task in steps_shown().values()} == {workers.node("shown")}
    # The web view's link to this execution's steps finds them all, and only them.
    other = flowrt.start(write_flow(tmp_path, SHOWN_FLOW, name="shown_in_flower")).wait(30)
    link = flower_search(flower.url, handle.id)
    assert link is not None and link.startswith(flower.url)
    wait_until(lambda: other.id in flower.http.get("/api/tasks", auth=(USER, PASSWORD)).text, 10)
    found = httpx.get(link, auth=(USER, PASSWORD)).json()
    assert {task["uuid"] for task in steps_shown().values()} <= set(found)
    assert found and all(handle.id in task["args"] for task in found.values())
    # Metrics keep one series per task name: the names are bounded by flow and call.
    metrics = flower.http.get("/metrics").text
    names = set(re.findall(r'task="(flowrt\.step [^"]*)"', metrics))
    assert names == {f"flowrt.step {flow} {call}" for call in ("start", "get", "success")}

"""Shared fixtures: an embedded flowrt on SQLite, and the real PostgreSQL and Redis of the machine.

A test that needs PostgreSQL or Redis skips when the server is absent, except under CI
(`CI` set), where it fails: CI must never pass by skipping.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa

import flowrt
from flowrt.client import Client
from flowrt.dispatch import StepTicket
from flowrt.runtime import Runtime
from flowrt.storage import SqlStore, open_store

ROOT = Path(__file__).resolve().parent.parent
FLOWS = Path(__file__).resolve().parent / "flows"
SECRET = "test-secret-0123456789abcdef"
PG_ADMIN_URL = os.environ.get(
    "FLOWRT_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PG_DATABASE = f"flowrt_test_{os.getpid()}"
REDIS_DB = int(os.environ.get("FLOWRT_TEST_REDIS_DB", "11"))  # another db keeps parallel runs apart


def wait_until(condition: Callable[[], object], timeout_s: float = 30.0, what: str = "") -> object:
    """Poll `condition` until it returns something truthy; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what or condition}")
        time.sleep(0.02)


def reachable(port: int) -> bool:
    """True when something accepts connections on 127.0.0.1:`port`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def need_service(name: str, port: int) -> None:
    """Skip the test when the service is absent, or fail under CI."""
    if reachable(port):
        return
    message = f"{name} is not reachable on 127.0.0.1:{port}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must not skip: start it, see .ci/run)")
    pytest.skip(message)


def base_env(home: Path, **extra: str) -> dict[str, str]:
    """FLOWRT_* variables for a test: its own home, the test secret, plus `extra`."""
    env = {
        "FLOWRT_HOME": str(home),
        "FLOWRT_SECRET": SECRET,
        "FLOWRT_BROKER_URL": "memory://localhost/",
        "FLOWRT_DATABASE_URL": f"sqlite:///{home / 'flowrt.db'}",
        "FLOWRT_WORKER_CONCURRENCY": "4",
    }
    env.update(extra)
    return env


@pytest.fixture
def flowrt_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, str]]:
    """Set FLOWRT_* for this test (embedded SQLite by default); returns a setter for overrides."""

    def apply(**extra: str) -> dict[str, str]:
        env = base_env(tmp_path / "home", **extra)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return env

    apply()
    yield apply
    flowrt.shutdown()
    _purge_memory_queues()


@pytest.fixture
def client(flowrt_env: Callable[..., dict[str, str]]) -> Client:
    """The embedded client `flowrt.start` uses: SQLite file, in-process worker, memory broker."""
    return flowrt.default_client()


def _purge_memory_queues() -> None:
    from kombu.transport import memory

    for queue in list(memory.Channel.queues.values()):
        while not queue.empty():
            queue.get_nowait()


def line_of(source: str, text: str) -> int:
    """The 1-based line of the only line of `source` containing `text`."""
    lines = [n for n, line in enumerate(source.splitlines(), 1) if text in line]
    assert len(lines) == 1, f"{text!r} is on lines {lines}"
    return lines[0]


def flow_path(name: str) -> str:
    """Path of a test flow in tests/flows."""
    return str(FLOWS / f"{name}.py")


def write_flow(tmp_path: Path, source: str, name: str = "flow") -> str:
    """Write `source` as a flow file and return its path."""
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    return str(path)


def run_flow(
    client: Client,
    tmp_path: Path,
    source: str,
    name: str = "flow",
    inputs: dict[str, object] | None = None,
    timeout_s: float = 60,
) -> flowrt.Handle:
    """Start the (dedented) `source` as flow `name`; wait for its end unless `timeout_s` is 0."""
    handle = client.start(write_flow(tmp_path, textwrap.dedent(source), name), inputs)
    return handle.wait(timeout_s) if timeout_s else handle


def assert_refused(caught: dict[str, list[str]], expected: dict[str, tuple[str, str]]) -> None:
    """Each call `caught` names raised the error class expected, with the text expected in it.

    `caught` maps a label to `[class name, message]`, as a flow that catches them saves it.
    """
    assert set(caught) == set(expected), caught
    for label, (kind, text) in expected.items():
        assert caught[label][0] == kind and text in caught[label][1], (label, caught[label])


class LocalHttpServer:
    """An outside system for flows to call: an HTTP server on a free loopback port.

    Subclasses give `_handler_class()`; `start()` serves on a daemon thread, `stop()` ends it.
    """

    def __init__(self) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError


def reply_json(handler: BaseHTTPRequestHandler, body: bytes, status: int = 200) -> None:
    """Answer the request `handler` serves with a JSON `body`."""
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class Recorder:
    """A dispatcher that keeps the step messages for the test to deliver by hand."""

    def __init__(self) -> None:
        self.sent: list[tuple[StepTicket, str | None]] = []
        self.etas: list[object] = []

    def enqueue_step(self, ticket: StepTicket, *, worker: str | None = None, eta=None) -> None:
        self.sent.append((ticket, worker))
        self.etas.append(eta)

    def deliver(self, runtime: Runtime) -> StepTicket:
        """Run the oldest message's step on `runtime`."""
        ticket, _ = self.sent.pop(0)
        self.etas.pop(0)
        runtime.step(ticket.execution_id, ticket.version, ticket.head_id)
        return ticket


# --- PostgreSQL and Redis -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh database of this test session, dropped at the end."""
    need_service("PostgreSQL", 5432)
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {PG_DATABASE}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_DATABASE
    from flowrt.storage import migrate
    from flowrt.storage.sql import create_engine

    engine = create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
    admin.dispose()


@pytest.fixture
def pg_clean(pg_url: str) -> str:
    """The session database with every table emptied."""
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE executions, savepoints, logs, named, messages, scripts")
    engine.dispose()
    return pg_url


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database number of the tests, flushed before and after."""
    need_service("Redis", 6379)
    import redis

    url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    connection = redis.Redis.from_url(url)
    connection.flushdb()
    yield url
    connection.flushdb()
    connection.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    """A migrated, empty store on a SQLite file or on the PostgreSQL test database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("pg_clean")
    opened = open_store(url)
    yield opened
    opened.close()


class WorkerProcesses:
    """Real `celery -A tasks worker` processes, started and stopped by a test."""

    def __init__(self, env: dict[str, str], tmp_path: Path) -> None:
        self.env = {**os.environ, **env, "PYTHONHASHSEED": "0"}
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, name: str | None = None, concurrency: int = 4, *, events: bool = False
    ) -> subprocess.Popen[bytes]:
        """Start `celery -A tasks worker -n NAME@%h`; its node name is `self.node(NAME)`.

        Without `events` it runs without gossip, mingle and heartbeat (quicker to start),
        which also leaves it no event dispatcher for Flower to switch on.
        """
        name = name or f"w{len(self.procs) + 1}-{uuid.uuid4().hex[:6]}"
        quiet = [] if events else ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        proc = self._spawn(
            name,
            ["worker", "-n", f"{name}@%h", "-c", str(concurrency), "--loglevel", "INFO", *quiet],
        )
        wait_until(lambda: b"ready" in self.log(name), 60, f"worker {name} to be ready")
        proc.node = self.node(name)  # type: ignore[attr-defined]
        return proc

    def start_beat(self) -> subprocess.Popen[bytes]:
        """Start `celery -A tasks beat`, which sends the reaper every reap interval."""
        schedule = self.tmp_path / "beat-schedule"
        proc = self._spawn("beat", ["beat", "-s", str(schedule), "--loglevel", "INFO"])
        wait_until(lambda: b"beat: Starting" in self.log("beat"), 60, "beat to start")
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL `proc` (no cleanup runs) and reap it."""
        proc.kill()
        proc.wait()

    @staticmethod
    def node(name: str) -> str:
        """The node name of the worker started as `name` (its direct queue's name)."""
        return f"{name}@{socket.gethostname()}"

    def log(self, name: str) -> bytes:
        """What the process started as `name` printed so far."""
        return (self.tmp_path / f"{name}.log").read_bytes()

    def _spawn(self, name: str, arguments: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks", *arguments],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.tmp_path.glob("*.log"))


@pytest.fixture
def production(
    flowrt_env: Callable[..., dict[str, str]], pg_clean: str, redis_url: str, tmp_path: Path
) -> Iterator[tuple[Client, WorkerProcesses]]:
    """flowrt on PostgreSQL and Redis: a client in the test, workers as real processes."""
    env = flowrt_env(FLOWRT_DATABASE_URL=pg_clean, FLOWRT_BROKER_URL=redis_url)
    workers = WorkerProcesses(env, tmp_path)
    try:
        yield flowrt.default_client(), workers
    finally:
        workers.stop_all()

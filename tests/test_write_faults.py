"""A step's database write that fails: transient faults are retried for the write alone,
permanent ones end the execution with their cause, and neither performs a call twice.

A local HTTP service counts the REST calls the flows make, outside the executions. Each flow
holds a canary string in a variable: variables are stored with every savepoint, so a log line
or message that showed a statement's parameters, or the row PostgreSQL refused, would show it.
"""

from __future__ import annotations

import logging
import sqlite3
import textwrap
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import LocalHttpServer, WorkerProcesses, line_of, reply_json, wait_until, write_flow
from test_faults import private_postgres  # noqa: F401 - a fixture: a PostgreSQL to stop

import flowrt
from flowrt.status import Status
from flowrt.storage.faults import Backoff, describe, is_permanent, is_transient, retry_transient
from flowrt.storage.sql import create_engine

CANARY = "canary-7f3a9c"
# Names of this module's own: other test sessions may share the Redis database.
QUEUE = f"flowrt-write-faults-{uuid.uuid4().hex[:8]}"
WORKER = f"wf-{uuid.uuid4().hex[:6]}"

REFUSED_FLOW = textwrap.dedent(f"""
    import flow_api

    def handler(system, this):
        canary = '{CANARY}'
        this.connect('svc', method='post', path='/once', json={{'n': 1}})
        this.save_dump('forbidden')
        this.connect('svc', method='post', path='/never')
        return this.success('unreachable')
""")

FLAKY_FLOW = textwrap.dedent(f"""
    import flow_api

    def handler(system, this):
        canary = '{CANARY}'
        this.connect('svc', method='post', path='/once', json={{'n': 1}})
        this.save_dump('flaky')
        this.connect('svc', method='post', path='/after')
        return this.success('stored on the second attempt')
""")


class CountingService(LocalHttpServer):
    """Answers every POST with 200 and counts them by path; `hold` makes one path wait."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.posts: Counter[str] = Counter()
        self.arrived = threading.Event()  # a POST to the held path came
        self.release = threading.Event()  # the held POST may answer now
        self.held_path: str | None = None
        super().__init__()
        self._httpd.daemon_threads = True
        self.start()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with service.lock:
                    service.posts[self.path] += 1
                if self.path == service.held_path:
                    service.arrived.set()
                    service.release.wait(60)
                body = b"{}"
                reply_json(self, body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def service() -> Iterator[CountingService]:
    running = CountingService()
    yield running
    running.release.set()
    running.stop()


# --- telling faults apart, on real errors --------------------------------------------------------


def sqlite_error(tmp_path: Path, statement: str, locked: bool = False) -> sa.exc.DBAPIError:
    """The error `statement` meets on flowrt's engine, or, `locked`, on one that will not wait
    while another connection holds the database."""
    url = f"sqlite:///{tmp_path / 'faults.db'}"
    setup = sqlite3.connect(tmp_path / "faults.db", isolation_level=None)
    setup.execute("CREATE TABLE IF NOT EXISTS t (x TEXT CHECK (x <> 'bad'))")
    if locked:
        setup.execute("BEGIN EXCLUSIVE")
        engine = sa.create_engine(url, connect_args={"timeout": 0}, hide_parameters=True)
    else:
        engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(statement, {"x": CANARY})
    except sa.exc.DBAPIError as error:
        return error
    finally:
        setup.close()
        engine.dispose()
    raise AssertionError(f"{statement} did not fail")


def test_a_refused_sqlite_row_is_permanent_and_described_without_its_parameters(tmp_path):
    error = sqlite_error(tmp_path, "INSERT INTO t VALUES ('bad') -- :x")
    assert is_permanent(error) and not is_transient(error)
    assert describe(error) == "IntegrityError: CHECK constraint failed: x <> 'bad'"
    assert CANARY not in str(error)  # the engine hides parameters from its own text too


def test_a_locked_sqlite_database_is_transient(tmp_path):
    error = sqlite_error(tmp_path, "INSERT INTO t VALUES (:x)", locked=True)
    assert is_transient(error) and not is_permanent(error)
    assert "locked" in describe(error)


@pytest.mark.postgres
def test_postgresql_errors_are_told_apart_by_their_sqlstate_class(pg_url):
    engine = create_engine(pg_url)
    cases = {
        "SELECT 1/0": False,  # 22012 division by zero: a data exception
        "SELECT * FROM no_such_table": False,  # 42P01: undefined table
        "SELECT pg_terminate_backend(pg_backend_pid())": True,  # 57P01 / dropped connection
    }
    try:
        for statement, transient in cases.items():
            with pytest.raises(sa.exc.DBAPIError) as caught:
                with engine.connect() as conn:
                    conn.exec_driver_sql(statement)
            assert is_transient(caught.value) is transient, statement
            assert is_permanent(caught.value) is not transient, statement
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_refused_postgresql_row_is_described_without_the_row_or_the_parameters(pg_url):
    engine = create_engine(pg_url)
    try:
        with pytest.raises(sa.exc.DBAPIError) as caught:
            with engine.connect() as conn:
                conn.exec_driver_sql("CREATE TEMP TABLE t (x TEXT CHECK (x <> 'bad'))")
                conn.exec_driver_sql("INSERT INTO t VALUES (%(x)s || 'bad')", {"x": ""})
    finally:
        engine.dispose()
    assert is_permanent(caught.value)
    assert describe(caught.value) == (
        'CheckViolation: new row for relation "t" violates check constraint "t_x_check"'
    )
    assert "Failing row" in str(caught.value)  # what describe() leaves out


def test_a_transient_fault_is_retried_a_bounded_number_of_times_and_a_permanent_one_never(
    tmp_path,
):
    locked = sqlite_error(tmp_path, "INSERT INTO t VALUES (:x)", locked=True)
    refused = sqlite_error(tmp_path, "INSERT INTO t VALUES ('bad') -- :x")
    for error, attempts_made in ((locked, 4), (refused, 1)):
        attempts: list[int] = []
        waits: list[float] = []

        def attempt(error: Exception = error, attempts: list[int] = attempts) -> None:
            attempts.append(1)
            raise error

        with pytest.raises(sa.exc.DBAPIError):
            retry_transient(attempt, Backoff(4, 0.5, 1.0), waits.append)
        assert len(attempts) == attempts_made
        assert waits == [0.5, 1.0, 1.0][: attempts_made - 1]


# --- a permanent fault at a step's write ----------------------------------------------------------


def test_a_permanent_error_at_a_steps_write_on_sqlite_ends_the_execution_and_performs_once(
    client, tmp_path, service, caplog
):
    """An operator's trigger refuses savepoints named 'forbidden': flowrt cannot check for
    that before the write, as it could for its own columns' limits, so it is a permanent
    database error at the commit after the POST, the kind validation never sees."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'home' / 'flowrt.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER policy BEFORE INSERT ON savepoints WHEN NEW.name = 'forbidden' "
            "BEGIN SELECT RAISE(ABORT, 'savepoint name refused by policy'); END"
        )
    engine.dispose()
    client.set_connector("svc", "rest", base_url=service.base_url)
    caplog.set_level(logging.DEBUG)

    handle = flowrt.start(write_flow(tmp_path, REFUSED_FLOW))
    record = handle.wait(60).record()

    assert record.status is Status.ENDED_ERROR, record.message
    assert "IntegrityError: savepoint name refused by policy" in (record.message or "")
    assert record.error_line == line_of(REFUSED_FLOW, "save_dump('forbidden')")
    assert service.posts == Counter({"/once": 1})
    assert not any("retrying" in r.getMessage() for r in caplog.records)
    assert CANARY not in caplog.text and CANARY not in (record.error or "")


@pytest.fixture
def refusing_postgres(pg_clean: str) -> Iterator[str]:
    """The test database with a CHECK constraint of the operator's on savepoint names."""
    engine = sa.create_engine(pg_clean)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "ALTER TABLE savepoints ADD CONSTRAINT policy_names "
            "CHECK (name IS DISTINCT FROM 'forbidden')"
        )
    try:
        yield pg_clean
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE savepoints DROP CONSTRAINT policy_names")
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.redis
def test_a_permanent_error_at_a_steps_write_on_postgresql_ends_the_execution_and_performs_once(
    flowrt_env, refusing_postgres, redis_url, tmp_path, service
):
    """A CHECK constraint the operator added refuses the savepoint named 'forbidden' (23514):
    the write after the POST fails the same way every time, so it is never retried."""
    env = flowrt_env(
        FLOWRT_DATABASE_URL=refusing_postgres, FLOWRT_BROKER_URL=redis_url, FLOWRT_QUEUE=QUEUE
    )
    workers = WorkerProcesses(env, tmp_path)
    try:
        workers.start(WORKER)
        client = flowrt.default_client()
        client.set_connector("svc", "rest", base_url=service.base_url)
        handle = flowrt.start(write_flow(tmp_path, REFUSED_FLOW))
        record = handle.wait(60).record()
        logs = workers.logs()
    finally:
        workers.stop_all()

    assert record.status is Status.ENDED_ERROR, record.message
    assert 'CheckViolation: new row for relation "savepoints" violates check constraint ' in (
        record.message or ""
    )
    assert record.error_line == line_of(REFUSED_FLOW, "save_dump('forbidden')")
    assert service.posts == Counter({"/once": 1})
    assert "the database refused it (CheckViolation" in logs
    assert "retrying" not in logs and "trying the write again" not in logs
    assert CANARY not in logs and "Failing row" not in logs


# --- a transient fault at a step's write ----------------------------------------------------------


@pytest.fixture
def flaky_postgres(pg_clean: str) -> Iterator[str]:
    """The test database, where the first savepoint named 'flaky' kills its own connection."""
    engine = sa.create_engine(pg_clean)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SEQUENCE flaky_attempts")
        conn.exec_driver_sql(
            "CREATE FUNCTION flaky() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.name = 'flaky' THEN IF nextval('flaky_attempts') = 1 THEN "
            "PERFORM pg_terminate_backend(pg_backend_pid()); END IF; END IF; RETURN NEW; END $$"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER flaky BEFORE INSERT ON savepoints FOR EACH ROW EXECUTE FUNCTION flaky()"
        )
    try:
        yield pg_clean
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER flaky ON savepoints")
            conn.exec_driver_sql("DROP FUNCTION flaky(); DROP SEQUENCE flaky_attempts")
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.redis
def test_a_dropped_connection_at_a_steps_write_retries_the_write_alone(
    flowrt_env, flaky_postgres, redis_url, tmp_path, service
):
    """A trigger terminates the backend that inserts the first savepoint named 'flaky', as a
    server restart or an administrator would (57P01): the write after the POST is tried
    again on a new connection, and the POST is not performed again."""
    env = flowrt_env(
        FLOWRT_DATABASE_URL=flaky_postgres, FLOWRT_BROKER_URL=redis_url, FLOWRT_QUEUE=QUEUE
    )
    workers = WorkerProcesses(env, tmp_path)
    try:
        workers.start(WORKER)
        client = flowrt.default_client()
        client.set_connector("svc", "rest", base_url=service.base_url)
        handle = flowrt.start(write_flow(tmp_path, FLAKY_FLOW))
        record = handle.wait(60).record()
        wait_until(lambda: b"trying the write again" in workers.log(WORKER), 10, "the retry's log")
        logs = workers.logs()
    finally:
        workers.stop_all()

    assert record.status is Status.ENDED_SUCCESS, f"{record.message}\n{record.error}"
    assert service.posts == Counter({"/once": 1, "/after": 1})
    assert "AdminShutdown: terminating connection due to administrator command" in logs
    assert CANARY not in logs
    assert [p.name for p in handle.savepoints() if p.name] == ["flaky"]


# --- the database away for longer than a step's retries ------------------------------------------

SLEEPER_FLOW = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        for i in range(4):
            this.sleep(1)
        return this.success('slept')
""")


@pytest.mark.redis
def test_a_step_that_keeps_meeting_a_database_away_is_dropped_after_its_retries_and_reaped_later(
    flowrt_env, redis_url, tmp_path, request
):
    """PostgreSQL stops under a sleeping execution: its step is retried twice (set so), then
    dropped with a log line; once PostgreSQL is back the reaper sends it on to the end."""
    postgres = request.getfixturevalue("private_postgres")  # of test_faults
    env = flowrt_env(
        FLOWRT_DATABASE_URL=postgres.url,
        FLOWRT_BROKER_URL=redis_url,
        FLOWRT_QUEUE=QUEUE,
        FLOWRT_LEASE_SECONDS="2",
        FLOWRT_STEP_RETRIES="2",
        FLOWRT_STEP_RETRY_SECONDS="0.1",
    )
    workers = WorkerProcesses(env, tmp_path)
    try:
        workers.start(WORKER)
        workers.start_beat()
        handle = flowrt.start(write_flow(tmp_path, SLEEPER_FLOW))
        wait_until(lambda: handle.record().status is Status.WAITING, 30, "the first sleep")
        postgres.stop()
        wait_until(lambda: b"dropped after 2 retries" in workers.log(WORKER), 60, "the drop")
        postgres.start()
        record = handle.wait(60).record()
        logs = workers.logs()
    finally:
        workers.stop_all()

    assert record.status is Status.ENDED_SUCCESS, f"{record.message}\n{record.error}"
    assert "retrying in 0.1 s (retry 1 of 2)" in logs and "(retry 3 of 2)" not in logs
    assert [p.call for p in handle.savepoints()] == ["sleep"] * 4 + ["success"]

"""Connectors seen from a flow: SQL on SQLite and PostgreSQL, REST against a real local server."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from conftest import LocalHttpServer, line_of, write_flow

import flowrt
from flowrt.client import Client
from flowrt.connectors.base import connector_types
from flowrt.errors import ConnectorError
from flowrt.status import Status

TYPES = connector_types()

# --- a real HTTP server on loopback ------------------------------------------------------------


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    """What the server answers: a status, a body (JSON if not bytes) and extra headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class RecordingServer(LocalHttpServer):
    """A local HTTP server that records every request and answers from a per-path script.

    `script(path, *replies)`: the n-th request to `path` gets the n-th reply; the last one
    repeats. Unscripted paths answer 200 with a JSON echo of the request.
    """

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._replies: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        super().__init__()

    def script(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._replies[path] = list(replies)

    def requests_to(self, path: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path == path]

    def _answer(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            replies = self._replies.get(seen.path)
            if not replies:
                return Reply(200, {"echo": {"method": seen.method, "path": seen.path}})
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(
                    self.command,
                    url.path,
                    parse_qs(url.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                reply = server._answer(seen)
                if isinstance(reply.body, bytes):
                    body, kind = reply.body, "text/plain"
                else:
                    body, kind = json.dumps(reply.body).encode(), "application/json"
                self.send_response(reply.status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    httpd = RecordingServer()
    httpd.start()
    yield httpd
    httpd.stop()


# --- SQL ---------------------------------------------------------------------------------------


@dataclass
class SqlDatabase:
    """A database holding the table `table` (qualified as the flow must write it)."""

    url: str
    table: str
    engine: sa.Engine


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[SqlDatabase]:
    url = f"sqlite:///{tmp_path / 'data.db'}"
    engine = sa.create_engine(url)
    yield SqlDatabase(url, "items", engine)
    engine.dispose()


@pytest.fixture
def postgres_database(pg_url: str) -> Iterator[SqlDatabase]:
    schema = f"connector_test_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    yield SqlDatabase(pg_url, f"{schema}.items", engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    engine.dispose()


@pytest.fixture(
    params=[
        pytest.param("sqlite_database", id="sqlite"),
        pytest.param("postgres_database", id="postgresql", marks=pytest.mark.postgres),
    ],
)
def sql_database(request: pytest.FixtureRequest) -> SqlDatabase:
    """The table `items` with three rows, in SQLite and in PostgreSQL."""
    database: SqlDatabase = request.getfixturevalue(request.param)
    with database.engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE {database.table} (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER)"
        )
        conn.execute(
            sa.text(f"INSERT INTO {database.table} (id, name, qty) VALUES (:id, :name, :qty)"),
            [
                {"id": 1, "name": "apple", "qty": 3},
                {"id": 2, "name": "pear", "qty": 7},
                {"id": 3, "name": "plum", "qty": 12},
            ],
        )
    return database


SQL_FLOW = """\
import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs):
    table = inputs['table']
    everything = this.connect('db', fetch=f'SELECT id, name, qty FROM {table} ORDER BY id')
    some = this.connect('db', fetch=f'SELECT name FROM {table} WHERE qty >= :least ORDER BY id',
                        params={'least': 5})
    changed = this.connect('db', params={'more': 100, 'below': 10},
                           execute=f'UPDATE {table} SET qty = qty + :more WHERE qty < :below')
    inserted = this.connect('db', params={'id': 4, 'name': 'fig', 'qty': 1},
                            execute=f'INSERT INTO {table} VALUES (:id, :name, :qty)')
    after = this.connect('db', fetch=f'SELECT id, qty FROM {table} ORDER BY id')
    this.save(output_value={
        'everything': everything.get('output_value'),
        'some': some.get('output_value'),
        'changed': changed.get('output_value'),
        'inserted': inserted.get('output_value'),
        'after': after.get('output_value'),
    })
    return this.success('sql done')
"""


def test_sql_connector_fetches_rows_as_dicts_and_executes_with_bind_parameters(
    client: Client, sql_database: SqlDatabase, tmp_path: Path
) -> None:
    client.set_connector("db", "sql", url=sql_database.url)

    handle = flowrt.start(write_flow(tmp_path, SQL_FLOW), {"table": sql_database.table})
    handle.wait(60)

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    outputs = record.outputs
    assert outputs["everything"] == {
        "result": [
            {"id": 1, "name": "apple", "qty": 3},
            {"id": 2, "name": "pear", "qty": 7},
            {"id": 3, "name": "plum", "qty": 12},
        ]
    }
    assert outputs["some"] == {"result": [{"name": "pear"}, {"name": "plum"}]}
    assert outputs["changed"]["rowcount"] == 2
    assert outputs["inserted"]["rowcount"] == 1
    assert outputs["after"] == {
        "result": [
            {"id": 1, "qty": 103},
            {"id": 2, "qty": 107},
            {"id": 3, "qty": 12},
            {"id": 4, "qty": 1},
        ]
    }
    with sql_database.engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT id, qty FROM {sql_database.table} ORDER BY id").all()
    assert [tuple(r) for r in rows] == [(1, 103), (2, 107), (3, 12), (4, 1)]


SQL_ERROR_FLOW = """\
import flow_api
import flowrt.errors

def handler(system, this):
    try:
        this.connect('db', fetch='SELECT * FROM no_such_table')
    except flowrt.errors.ConnectorError as error:
        this.save(output_value={'caught': type(error).__name__, 'message': str(error)})
    return this.success('handled')
"""


def test_a_failing_sql_statement_raises_connector_error_the_flow_can_catch(
    client: Client, sqlite_database: SqlDatabase, tmp_path: Path
) -> None:
    client.set_connector("db", "sql", url=sqlite_database.url)

    handle = flowrt.start(write_flow(tmp_path, SQL_ERROR_FLOW), {}).wait(60)

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs["caught"] == "ConnectorError"
    assert "'db'" in record.outputs["message"]
    assert "no_such_table" in record.outputs["message"]


# --- REST --------------------------------------------------------------------------------------

REST_FLOW = """\
import flow_api

def handler(system, this):
    posted = this.connect('api', method='post', path='/items', json={'name': 'fig', 'qty': 2},
                          params={'dry': 'no', 'tag': 'x'}, headers={'X-Trace': 'abc'})
    got = this.connect('api', path='/items/7')
    out = posted.get('output_value')
    this.save(output_value={
        'status_code': out['status_code'],
        'json': out['json'],
        'text': out['text'],
        'location': out['headers']['location'],
        'got': got.get('output_value')['json'],
        'got_status': got.get('output_value')['status_code'],
    })
    return this.success('rest done')
"""


def test_rest_connector_sends_method_path_json_params_and_headers_and_returns_the_response(
    client: Client, server: RecordingServer, tmp_path: Path
) -> None:
    client.set_connector("api", "rest", base_url=server.base_url, headers={"X-Team": "ops"})
    server.script("/items", Reply(201, {"id": 7}, {"Location": "/items/7"}))
    server.script("/items/7", Reply(200, {"id": 7, "name": "fig"}))

    handle = flowrt.start(write_flow(tmp_path, REST_FLOW), {}).wait(60)

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs == {
        "status_code": 201,
        "json": {"id": 7},
        "text": '{"id": 7}',
        "location": "/items/7",
        "got": {"id": 7, "name": "fig"},
        "got_status": 200,
    }
    [post] = server.requests_to("/items")
    assert post.method == "POST"
    assert post.query == {"dry": ["no"], "tag": ["x"]}
    assert post.json == {"name": "fig", "qty": 2}
    assert post.headers["x-trace"] == "abc"
    assert post.headers["x-team"] == "ops"
    assert post.headers["content-type"] == "application/json"
    [get] = server.requests_to("/items/7")
    assert get.method == "GET"
    assert get.body == b""

    # Each call carries execution id + its own savepoint id as its idempotency key.
    connects = [s for s in handle.savepoints() if s.call == "connect"]
    assert len(connects) == 2
    assert post.headers["idempotency-key"] == f"{handle.id}:{connects[0].id}"
    assert get.headers["idempotency-key"] == f"{handle.id}:{connects[1].id}"


UPLOAD_FLOW = """\
import flow_api

def handler(system, this):
    answer = this.connect('api', method='post', path='/charge', json={'amount': 5})
    this.save(output_value={'status_code': answer.get('output_value')['status_code']})
    return this.success('charged')
"""


def test_a_restored_connect_call_is_sent_again_with_a_new_idempotency_key(
    client: Client, server: RecordingServer, tmp_path: Path
) -> None:
    client.set_connector("api", "rest", base_url=server.base_url)
    server.script("/charge", Reply(500, b"try later"), Reply(200, {"charged": True}))

    handle = flowrt.start(write_flow(tmp_path, UPLOAD_FLOW), {}).wait(60)
    assert handle.status is Status.ENDED_ERROR
    [connect] = [s for s in handle.savepoints() if s.call == "connect"]

    handle.restore(connect.id).wait(60)

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs == {"status_code": 200}
    first, second = server.requests_to("/charge")
    assert first.json == second.json == {"amount": 5}
    assert first.headers["idempotency-key"] == f"{handle.id}:{connect.id}"
    # A restore is a new attempt: a server that honours the key must not answer it with
    # the first attempt's cached 500.
    assert second.headers["idempotency-key"] == f"{handle.id}:{connect.id}:1"
    [restored] = [s for s in handle.savepoints() if s.id == connect.id]
    assert restored.restored == 1


STATUS_FLOW = """\
import flow_api

def handler(system, this):
    this.connect('api', method='put', path='/missing', json={'x': 1})
    return this.success('unreachable')
"""


def test_a_status_of_400_or_above_fails_the_call_with_status_and_body(
    client: Client, server: RecordingServer, tmp_path: Path
) -> None:
    client.set_connector("api", "rest", base_url=server.base_url)
    server.script("/missing", Reply(404, b"no such thing here"))

    handle = flowrt.start(write_flow(tmp_path, STATUS_FLOW), {}).wait(60)

    record = handle.record()
    assert record.status is Status.ENDED_ERROR
    assert record.error_line == line_of(STATUS_FLOW, "this.connect(")
    assert "HttpStatusError" in (record.message or "")
    for text in (record.message or "", record.error or ""):
        assert "PUT" in text
        assert f"{server.base_url}/missing" in text
        assert "404" in text
        assert "no such thing here" in text
        assert "raise_for_status=False" in text
    assert len(server.requests_to("/missing")) == 1


REGARDLESS_FLOW = """\
import flow_api

def handler(system, this):
    out = this.connect('api', path='/broken', raise_for_status=False).get('output_value')
    this.save(output_value={'status_code': out['status_code'], 'json': out['json'],
                            'text': out['text']})
    return this.success('got it anyway')
"""


def test_raise_for_status_false_returns_an_error_response_instead_of_failing(
    client: Client, server: RecordingServer, tmp_path: Path
) -> None:
    client.set_connector("api", "rest", base_url=server.base_url)
    server.script("/broken", Reply(503, {"error": "maintenance"}))

    handle = flowrt.start(write_flow(tmp_path, REGARDLESS_FLOW), {}).wait(60)

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs == {
        "status_code": 503,
        "json": {"error": "maintenance"},
        "text": '{"error": "maintenance"}',
    }


CATCH_FLOW = """\
import flow_api
import flowrt.errors

def handler(system, this):
    try:
        this.connect('api', method='delete', path='/locked')
    except flowrt.errors.HttpStatusError as error:
        this.save(output_value={'status_code': error.status_code, 'body': error.body,
                                'message': str(error)})
    return this.success('handled')
"""


def test_a_flow_can_catch_http_status_error(
    client: Client, server: RecordingServer, tmp_path: Path
) -> None:
    client.set_connector("api", "rest", base_url=server.base_url)
    server.script("/locked", Reply(409, b"locked by someone else"))

    handle = flowrt.start(write_flow(tmp_path, CATCH_FLOW), {}).wait(60)

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs["status_code"] == 409
    assert record.outputs["body"] == "locked by someone else"
    assert "DELETE" in record.outputs["message"]
    assert "409" in record.outputs["message"]
    assert "locked by someone else" in record.outputs["message"]


# --- configuration errors ----------------------------------------------------------------------

UNKNOWN_FLOW = """\
import flow_api

def handler(system, this):
    this.log('before')
    this.connect('nowhere', fetch='SELECT 1')
    return this.success('unreachable')
"""


def test_an_unknown_connector_ends_the_execution_naming_the_line_and_how_to_configure_it(
    client: Client, tmp_path: Path
) -> None:
    handle = flowrt.start(write_flow(tmp_path, UNKNOWN_FLOW), {}).wait(60)

    record = handle.record()
    line = line_of(UNKNOWN_FLOW, "this.connect(")
    assert record.status is Status.ENDED_ERROR
    assert record.error_line == line
    assert f"line {line}" in (record.error or "")
    for text in (record.message or "", record.error or ""):
        assert "no connector named 'nowhere'" in text
        assert "flowrt connector set nowhere" in text
    # its savepoints are kept for a restore once the connector exists
    assert [s.call for s in handle.savepoints()] == ["log", "connect"]


def test_a_connector_configured_after_the_failure_lets_a_restore_finish_the_execution(
    client: Client, sqlite_database: SqlDatabase, tmp_path: Path
) -> None:
    handle = flowrt.start(write_flow(tmp_path, UNKNOWN_FLOW), {}).wait(60)
    assert handle.status is Status.ENDED_ERROR
    [connect] = [s for s in handle.savepoints() if s.call == "connect"]

    client.set_connector("nowhere", "sql", url=sqlite_database.url)
    handle.restore(connect.id).wait(60)

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.message == "unreachable"


@pytest.mark.parametrize(
    ("type_name", "config", "expected"),
    [
        ("sql", {}, "a sql connector needs url"),
        ("sql", {"url": ""}, "a sql connector needs url"),
        ("rest", {}, "a rest connector needs base_url"),
        (
            "ftp",
            {"url": "ftp://example.org"},
            "connection type 'FTP' is not supported by flowrt (it runs no connector for it "
            "here); the supported types are " + ", ".join(sorted(t.upper() for t in TYPES)),
        ),
        ("sql", {"url": "sqlite://", "pool": 5}, "a sql connector takes no pool; it takes url"),
        (
            "rest",
            {"base_url": "http://127.0.0.1", "verify": False},
            "a rest connector takes no verify; it takes base_url, headers, timeout_s",
        ),
    ],
)
def test_a_bad_connector_configuration_is_refused_with_a_clear_message(
    client: Client, type_name: str, config: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConnectorError) as caught:
        client.set_connector("x", type_name, **config)

    assert str(caught.value) == expected
    assert client.list_named("connector") == []


BAD_PARAM_FLOW = """\
import flow_api

def handler(system, this):
    this.connect('db', fetch='SELECT 1', retries=3)
    return this.success('unreachable')
"""


def test_a_parameter_the_connector_does_not_take_fails_the_call_naming_it(
    client: Client, sqlite_database: SqlDatabase, tmp_path: Path
) -> None:
    client.set_connector("db", "sql", url=sqlite_database.url)

    handle = flowrt.start(write_flow(tmp_path, BAD_PARAM_FLOW), {}).wait(60)

    record = handle.record()
    assert record.status is Status.ENDED_ERROR
    assert record.error_line == line_of(BAD_PARAM_FLOW, "this.connect(")
    assert "InvalidCallError" in (record.message or "")
    assert "'retries'" in (record.message or "")
    assert "fetch, fetchrow, fetchval, execute, params" in (record.message or "")

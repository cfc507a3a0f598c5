"""The acceptance scenario: the DESIGN.md example flow fails its upload, and a restore of its
named savepoint finishes it with the data as first fetched, without fetching again.

Run on the embedded default (SQLite store, in-process worker) and in production shape
(PostgreSQL store, Redis broker, two real `celery -A tasks worker` processes). The data lives in
PostgreSQL in both: `data` is a view over a function that logs every read to `fetch_log`, a
counter kept outside the execution that proves whether the fetch ran again.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import LocalHttpServer, WorkerProcesses, flow_path, line_of

import flowrt
from flowrt.client import Client
from flowrt.status import Status

# DESIGN.md section 1's example, verbatim (so left unformatted by ruff).
FLOW = flow_path("acceptance_upload")
ORIGINAL_ROWS = [
    {"id": 1, "name": "apple", "qty": 3},
    {"id": 2, "name": "pear", "qty": 7},
]


def flow_line(text: str) -> int:
    """The line of the acceptance flow that contains `text`."""
    return line_of(Path(FLOW).read_text(), text)


# --- the outside world: a SQL database that counts reads, an upload endpoint that fails once ---


@dataclass
class DataDatabase:
    """A PostgreSQL schema with the view `data`, whose every read adds a row to `fetch_log`."""

    url: str
    schema: str
    engine: sa.Engine

    def fetches(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.exec_driver_sql(f"SELECT count(*) FROM {self.schema}.fetch_log").scalar_one()
            )

    def change_data(self) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE {self.schema}.data_rows SET qty = qty * 100")
            conn.exec_driver_sql(f"DELETE FROM {self.schema}.data_rows WHERE id = 1")
            conn.exec_driver_sql(
                f"INSERT INTO {self.schema}.data_rows (id, name, qty) VALUES (3, 'plum', 1)"
            )

    def current_rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            result = conn.exec_driver_sql(
                f"SELECT id, name, qty FROM {self.schema}.data_rows ORDER BY id"
            )
            return [dict(row._mapping) for row in result]


@pytest.fixture
def data_database(pg_url: str) -> Iterator[DataDatabase]:
    schema = f"acceptance_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        conn.exec_driver_sql(
            f"CREATE TABLE {schema}.data_rows (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER)"
        )
        conn.exec_driver_sql(
            f"CREATE TABLE {schema}.fetch_log (n SERIAL PRIMARY KEY, at TIMESTAMPTZ DEFAULT now())"
        )
        conn.exec_driver_sql(
            f"""
            CREATE FUNCTION {schema}.fetch_data() RETURNS SETOF {schema}.data_rows
            LANGUAGE plpgsql VOLATILE AS $$
            BEGIN
                INSERT INTO {schema}.fetch_log DEFAULT VALUES;
                RETURN QUERY SELECT * FROM {schema}.data_rows ORDER BY id;
            END $$
            """
        )
        conn.exec_driver_sql(f"CREATE VIEW {schema}.data AS SELECT * FROM {schema}.fetch_data()")
        conn.execute(
            sa.text(f"INSERT INTO {schema}.data_rows (id, name, qty) VALUES (:id, :name, :qty)"),
            ORIGINAL_ROWS,
        )
    # The flow says `SELECT * FROM data`, verbatim: the connector's search_path finds the view.
    url = f"{pg_url}?options=-csearch_path%3D{schema}"
    yield DataDatabase(url, schema, engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    engine.dispose()


class UploadServer(LocalHttpServer):
    """A loopback HTTP server whose POST /upload answers 500 the first time, then 200."""

    def __init__(self) -> None:
        self.uploads: list[tuple[int, dict[str, str], Any]] = []
        self._lock = threading.Lock()
        super().__init__()
        self.start()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/upload":
                    status, reply = 404, b"no such endpoint"
                else:
                    with server._lock:
                        status = 500 if not server.uploads else 200
                        headers = {k.lower(): v for k, v in self.headers.items()}
                        server.uploads.append((status, headers, json.loads(body)))
                    reply = b"storage backend down" if status == 500 else b'{"stored": true}'
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def upload_server() -> Iterator[UploadServer]:
    server = UploadServer()
    yield server
    server.stop()


# --- the scenario ------------------------------------------------------------------------------


def run_scenario(client: Client, data: DataDatabase, server: UploadServer) -> None:
    client.set_connector("database", "sql", url=data.url)
    client.set_connector("remote-api", "rest", base_url=server.base_url)

    # 1. The upload fails: the execution ends ENDED_ERROR at the upload line.
    handle = flowrt.start(FLOW, {}).wait(60)
    record = handle.record()
    assert record.status is Status.ENDED_ERROR, record.message
    assert record.error_line == flow_line("path='/upload'")
    assert "HttpStatusError" in (record.message or "")
    assert "500" in (record.message or "") and "storage backend down" in (record.message or "")
    assert data.fetches() == 1
    assert [(status, rows) for status, _, rows in server.uploads] == [(500, ORIGINAL_ROWS)]

    # 2. The data changes outside the execution.
    data.change_data()
    changed = data.current_rows()
    assert changed != ORIGINAL_ROWS

    # 3. Restoring the named savepoint finishes the execution with the data as first fetched.
    handle.restore("with-fetched-data", by="name").wait(60)
    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.message == "all done"
    assert [(status, rows) for status, _, rows in server.uploads] == [
        (500, ORIGINAL_ROWS),
        (200, ORIGINAL_ROWS),
    ]

    # 4. The fetch did not run again: not in the database, not in the journal.
    assert data.fetches() == 1
    savepoints = handle.savepoints()
    fetch_line = flow_line("fetch='SELECT * FROM data'")
    assert len([s for s in savepoints if s.call == "connect" and s.line == fetch_line]) == 1
    [named] = [s for s in savepoints if s.name == "with-fetched-data"]
    assert named.call == "save_dump"
    assert named.restored == 1


@pytest.mark.postgres
def test_design_example_restored_after_a_failed_upload_uploads_the_first_fetch_embedded(
    client: Client, data_database: DataDatabase, upload_server: UploadServer
) -> None:
    run_scenario(client, data_database, upload_server)


@pytest.mark.postgres
@pytest.mark.redis
def test_design_example_restored_after_a_failed_upload_uploads_the_first_fetch_in_production(
    production: tuple[Client, WorkerProcesses],
    data_database: DataDatabase,
    upload_server: UploadServer,
) -> None:
    client, workers = production
    workers.start()
    workers.start()

    try:
        run_scenario(client, data_database, upload_server)
    except BaseException:
        print(workers.logs())
        raise

"""Connections the way Cloudomation flows write them: `this.task(TYPE, ...)`, inline
`this.connect(connector_type=...)`, named handles, run=False, wait=ALL_ENDED, unsupported types,
`system.connection(name)` records, masked credentials, and replay from the journal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import WorkerProcesses, line_of, write_flow
from test_connectors import RecordingServer, Reply

import flowrt
from flowrt.client import Client, Handle
from flowrt.status import Status

FLOWRT = Path(sys.executable).parent / "flowrt"  # the console script of this virtualenv
PASSWORD = "url-Pa55-7f6e5d4c"
TOKEN = "tok-0a1b2c3d4e5f-inline"


@pytest.fixture
def http() -> Iterator[RecordingServer]:
    server = RecordingServer()
    server.start()
    yield server
    server.stop()


def shown_of(handle: Handle) -> str:
    """Everything flowrt shows of an execution: its stored message, error, outputs, savepoint
    variables and logs, and what `flowrt show`, `savepoints` and `logs` print."""
    record = handle.record()
    parts = [record.message or "", record.error or "", json.dumps(record.outputs)]
    parts += [json.dumps(sp.variables) for sp in handle.savepoints()]
    parts += [log.message for log in handle.logs()]
    for command in (["show", "--json"], ["savepoints", "--json"], ["logs"]):
        done = subprocess.run(
            [str(FLOWRT), command[0], handle.id, *command[1:]],
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        parts += [done.stdout, done.stderr]
    return "\n".join(parts)


def replays(client: Client) -> int:
    """How many calls the in-process worker answered from a journal while loading executions."""
    runtimes = client.app.flowrt_runtimes.values()  # type: ignore[attr-defined]
    return sum(runtime.stats["replayed_calls"] for runtime in runtimes)


def run(tmp_path: Path, source: str, inputs: dict | None = None) -> Handle:
    return flowrt.start(write_flow(tmp_path, textwrap.dedent(source)), inputs or {}).wait(60)


# --- inline connections ------------------------------------------------------------------------

INLINE_FLOW = """\
import flow_api

def handler(system, this, inputs):
    base = inputs['base']
    made = this.task('REST', url=base + '/items?tag=x', method='post', json={'n': 1},
                     headers={'X-Trace': 'abc'})
    again = this.task('rest', {'url': base + '/items/1'})
    third = this.connect(connector_type='Rest', input_value={'url': base + '/plain'},
                         method='PUT', data={'k': 'v'})
    out = made.get('output_value')
    this.save(output_value={
        'made': [out['status_code'], out['json'], out['headers']['location']],
        'again': again.get('output_value')['json'],
        'third': third.load('status', 'output_value')[1]['status_code'],
        'status': made.get('status'),
    })
    return this.success('done')
"""


def test_task_and_inline_connect_call_an_absolute_url_with_any_case_of_the_type(
    client: Client, http: RecordingServer, tmp_path: Path
) -> None:
    http.script("/items", Reply(201, {"id": 1}, {"Location": "/items/1"}))
    http.script("/items/1", Reply(200, {"id": 1, "name": "fig"}))

    handle = run(tmp_path, INLINE_FLOW, {"base": http.base_url})

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs == {
        "made": [201, {"id": 1}, "/items/1"],
        "again": {"id": 1, "name": "fig"},
        "third": 200,
        "status": "ENDED_SUCCESS",
    }
    [post] = http.requests_to("/items")
    assert (post.method, post.query, post.json) == ("POST", {"tag": ["x"]}, {"n": 1})
    assert post.headers["x-trace"] == "abc"
    [put] = http.requests_to("/plain")
    # Cloudomation's data= is a JSON body.
    assert (put.method, put.json, put.headers["content-type"]) == (
        "PUT",
        {"k": "v"},
        "application/json",
    )


NAMED_FLOW = """\
import flow_api

def handler(system, this, inputs):
    stored = this.connect('api', path='/a', name='read a')
    inline = this.task('REST', url=inputs['base'] + '/b', name='read b')
    this.save(output_value={'names': [stored.get('name'), inline.get('name')],
                            'one': stored.load('status'),
                            'two': list(inline.load('name', 'status'))})
    return this.success('named')
"""


def test_name_is_the_connections_own_name_and_no_longer_collides_with_the_connector(
    client: Client, http: RecordingServer, tmp_path: Path
) -> None:
    client.set_connector("api", "rest", base_url=http.base_url)

    handle = run(tmp_path, NAMED_FLOW, {"base": http.base_url})

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs == {
        "names": ["read a", "read b"],
        "one": "ENDED_SUCCESS",
        "two": ["read b", "ENDED_SUCCESS"],
    }
    assert [s.path for s in http.seen] == ["/a", "/b"]


OVERRIDE_FLOW = """\
import flow_api

def handler(system, this, inputs):
    this.connect('api', path='/here', base_url=inputs['other'])
    this.connect('api', url=inputs['other'] + '/there')
    return this.success('overridden')
"""


def test_a_call_on_a_stored_connector_may_override_its_settings_as_in_cloudomation(
    client: Client, http: RecordingServer, tmp_path: Path
) -> None:
    client.set_connector("api", "rest", base_url="http://127.0.0.1:9/nowhere")

    handle = run(tmp_path, OVERRIDE_FLOW, {"other": http.base_url})

    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert [s.path for s in http.seen] == ["/here", "/there"]


# --- run=False, run(), run_async(), wait() ----------------------------------------------------

DEFERRED_FLOW = """\
import flow_api

def handler(system, this, inputs):
    base = inputs['base']
    later = this.connect(connector_type='REST', url=base + '/deferred', run=False)
    before = later.get('status')
    misuse = []
    for wrong in (later.wait, lambda: later.get('id'), later.load):
        try:
            wrong()
        except flow_api.InvalidCallError as error:
            misuse.append(str(error))
    this.task('REST', url=base + '/probe')
    later.run_async()
    later.wait()
    again = later.run().get('status')  # it ran: running it again makes no call
    other = this.task('REST', url=base + '/sync', run=False).run()
    this.save(output_value={'before': before, 'after': later.get('status'),
                            'json': later.get('output_value')['json'],
                            'other': other.get('status'), 'again': again,
                            'misuse': misuse})
    return this.success('deferred')
"""


def test_run_false_makes_no_call_until_run_or_run_async(
    client: Client, http: RecordingServer, tmp_path: Path
) -> None:
    handle = run(tmp_path, DEFERRED_FLOW, {"base": http.base_url})

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert [s.path for s in http.seen] == ["/probe", "/deferred", "/sync"]
    misuse = record.outputs.pop("misuse")
    assert record.outputs == {
        "before": "PAUSED",
        "after": "ENDED_SUCCESS",
        "json": {"echo": {"method": "GET", "path": "/deferred"}},
        "other": "ENDED_SUCCESS",
        "again": "ENDED_SUCCESS",
    }
    assert len(misuse) == 3
    assert "has not run; call .run() or .run_async() first" in misuse[0]
    assert "the fields are 'output_value', 'status'" in misuse[1]
    assert "connection.load() needs a field" in misuse[2]
    assert [s.call for s in handle.savepoints()].count("connect") == 3


# --- wait=ALL_ENDED: a failed connection is a status, not an exception ------------------------

ENDED_FLOW = """\
import flow_api

def handler(system, this, inputs):
    base = inputs['base']
    failed = this.task('REST', url=base + '/gone', wait=system.return_when.ALL_ENDED)
    quiet = this.connect(connector_type='REST', url=base + '/gone', wait=False)
    try:
        quiet.wait()
        raised = None
    except flow_api.HttpStatusError as error:
        raised = error.status_code
    try:
        this.task('REST', url=base + '/gone')
        default = None
    except flow_api.ConnectorError as error:
        default = type(error).__name__
    this.save(output_value={
        'status': failed.get('status'), 'message': failed.get('message'),
        'output': failed.get('output_value'), 'raised': raised, 'default': default,
        'quiet': quiet.get('status'),
    })
    return this.success('carried on')
"""


def test_wait_all_ended_returns_a_failed_connection_with_its_status_and_message(
    client: Client, http: RecordingServer, tmp_path: Path
) -> None:
    http.script("/gone", Reply(404, b"no such item"))

    handle = run(tmp_path, ENDED_FLOW, {"base": http.base_url})

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    outputs = record.outputs
    assert outputs["status"] == outputs["quiet"] == "ENDED_ERROR"
    assert "answered 404" in outputs["message"] and "no such item" in outputs["message"]
    assert outputs["output"] == {"status_code": 404, "text": "no such item"}
    assert outputs["raised"] == 404
    assert outputs["default"] == "HttpStatusError"
    assert len(http.requests_to("/gone")) == 3


# --- types flowrt does not support, and bad input ----------------------------------------------

UNSUPPORTED_FLOW = """\
import flow_api
from flow_api import exceptions

def handler(system, this):
    seen = []
    for kind in ('GOOGLE', 'aws', 'Vault', 'NOSUCH'):
        try:
            this.task(kind, region='eu', wait=system.return_when.ALL_ENDED)
        except exceptions.UnsupportedConnectionError as error:
            seen.append([error.connection_type, str(error)])
    this.save(output_value={'seen': seen})
    this.connect(connector_type='GOOGLE', api='sheets')
    return this.success('unreachable')
"""


def test_unsupported_connection_types_raise_a_catchable_error_naming_type_and_choices(
    client: Client, tmp_path: Path
) -> None:
    handle = run(tmp_path, UNSUPPORTED_FLOW)

    record = handle.record()
    assert record.status is Status.ENDED_ERROR
    assert record.error_line == line_of(UNSUPPORTED_FLOW, "connector_type='GOOGLE'")
    assert "UnsupportedConnectionError" in (record.message or "")
    assert "AttributeError" not in (record.error or "")
    seen = record.outputs["seen"]
    assert [kind for kind, _ in seen] == ["GOOGLE", "AWS", "VAULT", "NOSUCH"]
    for kind, message in seen:
        assert f"connection type {kind!r} is not supported by flowrt" in message
        assert "REST" in message and "SQL" in message and "SMTP" in message


BAD_INPUT_FLOW = """\
import flow_api

def handler(system, this, inputs):
    problems = []
    attempts = [
        lambda: this.task('REST', method='get'),
        lambda: this.task('REST', url='not a url'),
        lambda: this.task('REST', url=inputs['base'], retries=3),
        lambda: this.task('REST', url=inputs['base'], wait='SOMETIMES'),
        lambda: this.task('REST', url=inputs['base'], run='no'),
        lambda: this.task('REST', 'url=x'),
        lambda: this.task(url=inputs['base']),
        lambda: this.connect(name='api'),
        lambda: this.connect('api', connector_type='REST'),
        lambda: this.connect(connector_type='REST', input_value=['url']),
        lambda: this.task('REST', url=inputs['base'], method='get me'),
        lambda: this.task('REST', url=inputs['base'], name='x' * 201),
    ]
    for attempt in attempts:
        try:
            attempt()
            problems.append('no error')
        except flow_api.FlowApiError as error:
            problems.append(type(error).__name__ + ': ' + str(error))
    this.save(output_value={'problems': problems})
    this.task('REST', url='ftp://example.org/file')
    return this.success('unreachable')
"""


def test_bad_connection_input_is_an_invalid_call_error_at_the_flows_line(
    client: Client, http: RecordingServer, tmp_path: Path
) -> None:
    handle = run(tmp_path, BAD_INPUT_FLOW, {"base": http.base_url})

    record = handle.record()
    assert record.status is Status.ENDED_ERROR
    assert record.error_line == line_of(BAD_INPUT_FLOW, "ftp://example.org")
    assert "InvalidCallError" in (record.message or "")
    assert "'ftp://example.org/file' is not an http(s) URL" in (record.message or "")
    problems = record.outputs["problems"]
    expected = [
        "needs url=",
        "'not a url' is not an http(s) URL",
        "takes no parameter 'retries'",
        "use True, False or system.return_when",
        "run must be True or False",
        "inputs must be a dict",
        "task() needs a connection type first",
        "name= is the connection's own name",
        "not both",
        "takes a dict of parameters, not list",
        "method must be a word",
        "UnstorableValueError: task: the connection name cannot be stored",
    ]
    assert len(problems) == len(expected), problems
    for problem, fragment in zip(problems[:-1], expected[:-1], strict=True):
        assert problem.startswith("InvalidCallError: ") and fragment in problem, (fragment, problem)
    assert problems[-1].startswith(expected[-1])
    assert http.seen == []


# --- replay answers from the journal -------------------------------------------------------------

REPLAYED_FLOW = """\
import flow_api

def handler(system, this, inputs):
    base = inputs['base']
    got = this.task('REST', url=base + '/once', name='once')
    failed = this.task('REST', url=base + '/fails', wait=system.return_when.ALL_ENDED)
    later = this.connect(connector_type='REST', url=base + '/later', run=False)
    later.run()
    this.sleep(1.5)  # longer than FLOWRT_SLEEP_MAX_SECONDS: unloaded, then replayed on waking
    this.save(output_value={'json': got.get('output_value')['json'], 'name': got.get('name'),
                            'failed': failed.get('status'), 'later': later.get('status')})
    return this.success('replayed')
"""


def test_a_replayed_step_answers_connections_from_the_journal_without_calling_again(
    flowrt_env: object, http: RecordingServer, tmp_path: Path
) -> None:
    flowrt_env(FLOWRT_SLEEP_MAX_SECONDS="0.3")  # type: ignore[operator]
    client = flowrt.default_client()  # built with that setting
    http.script("/once", Reply(200, {"n": 1}), Reply(200, {"n": 2}))
    http.script("/fails", Reply(500, b"down"), Reply(200, {"ok": True}))

    handle = run(tmp_path, REPLAYED_FLOW, {"base": http.base_url})

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs == {
        "json": {"n": 1},
        "name": "once",
        "failed": "ENDED_ERROR",
        "later": "ENDED_SUCCESS",
    }
    # One request each: the woken execution replayed them from its journal.
    assert [s.path for s in http.seen] == ["/once", "/fails", "/later"]
    assert replays(client) >= 3


# --- credentials given inline are masked ---------------------------------------------------------

SECRET_FLOW = """\
import flow_api

def handler(system, this, inputs):
    password = system.setting('pw').get('value')  # named so: masked before it is used too
    bearer = 'Bearer ' + system.setting('tok').get('value')
    target = inputs['base'].replace('://', '://robot:' + password + '@') + '/secure'
    answer = this.task('REST', url=target, headers={'Authorization': bearer},
                       wait=system.return_when.ALL_ENDED)
    this.log('status', answer.get('status'))
    this.save(output_value={'message': answer.get('message')})
    this.task('REST', url=target, headers={'Authorization': bearer}, nonsense=1)
    return this.success('unreachable')
"""


def test_inline_credentials_never_show_in_messages_variables_logs_or_the_cli(
    client: Client, http: RecordingServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client.set_setting("pw", PASSWORD)
    client.set_setting("tok", TOKEN)
    # The server echoes the credentials it got into its error body.
    http.script("/secure", Reply(401, f"denied {PASSWORD} {TOKEN}".encode()))

    with caplog.at_level("DEBUG"):
        handle = run(tmp_path, SECRET_FLOW, {"base": http.base_url})

    record = handle.record()
    assert record.status is Status.ENDED_ERROR
    assert record.error_line == line_of(SECRET_FLOW, "nonsense=1")
    assert "'nonsense'" in (record.message or "")
    assert "answered 401" in record.outputs["message"]
    [seen] = http.requests_to("/secure")
    # The URL's user and password were sent (as basic authentication), only never shown.
    assert seen.headers["authorization"].startswith("Basic ")
    shown = shown_of(handle) + caplog.text
    assert "robot:***@" in shown and "***" in record.outputs["message"]
    assert PASSWORD not in shown and TOKEN not in shown
    # Where a variable held them, the snapshot shows the variable with the secret masked.
    connect = next(s for s in handle.savepoints() if s.call == "connect")
    assert (connect.variables or {})["target"].startswith("'http://robot:***@")
    assert set(connect.variables or {}) >= {"password", "bearer"}


# --- system.connection(name) ---------------------------------------------------------------------

RECORD_FLOW = """\
import flow_api

def handler(system, this, inputs):
    crm = system.connection('crm')
    before = crm.exists()
    crm.save(connection_type='REST', value={'base_url': inputs['base'],
                                              'headers': {'X-Api-Key': inputs['key']}})
    value, kind = crm.get('value'), crm.get('connection_type')
    answer = this.connect('crm', path='/via-record').get('output_value')['status_code']
    problems = []
    for bad in ({'connection_type': 'REST', 'value': {'url': 'x'}},
                {'connection_type': 'GOOGLE', 'value': {}},
                {'connection_type': 'REST', 'value': 'base_url=x'},
                {'value': {}, 'other': 1}):
        try:
            system.connection('broken').save(**bad)
        except flow_api.FlowApiError as error:
            problems.append(type(error).__name__ + ': ' + str(error))
    try:
        system.connection('missing').get('value')
    except flow_api.NotFoundError as error:
        problems.append(str(error))
    crm.delete()
    this.save(output_value={'before': before, 'value': value, 'kind': kind, 'answer': answer,
                            'after': crm.exists(), 'broken': system.connection('broken').exists(),
                            'problems': problems})
    return this.success('records')
"""


def test_system_connection_reads_saves_checks_and_deletes_stored_connectors(
    client: Client, http: RecordingServer, tmp_path: Path
) -> None:
    handle = run(tmp_path, RECORD_FLOW, {"base": http.base_url, "key": TOKEN})

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    outputs = record.outputs
    assert outputs["before"] is False and outputs["after"] is False
    assert outputs["value"] == {"base_url": http.base_url, "headers": {"X-Api-Key": TOKEN}}
    assert outputs["kind"] == "REST"
    assert outputs["answer"] == 200
    assert http.requests_to("/via-record")[0].headers["x-api-key"] == TOKEN
    assert outputs["broken"] is False
    problems = outputs["problems"]
    assert problems[0].startswith("ConnectorError: a rest connector needs base_url")
    assert problems[1].startswith("UnsupportedConnectionError: connection type 'GOOGLE'")
    assert problems[2].startswith("InvalidCallError: connection.save(value=...) takes a dict")
    assert problems[3].startswith("InvalidCallError: connection.save() takes connection_type=")
    assert "no connection 'missing'" in problems[4] or "'missing'" in problems[4]
    assert client.list_named("connector") == []
    # What the flow saved is masked where flowrt shows it.
    save = next(s for s in handle.savepoints() if s.call == "connection.save")
    assert TOKEN not in json.dumps(save.variables)


# --- on real workers -----------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.redis
def test_inline_connections_run_on_real_workers_that_replay_every_step(
    production: tuple[Client, WorkerProcesses], http: RecordingServer, tmp_path: Path
) -> None:
    client, workers = production
    workers.env["FLOWRT_LIVE_MAX"] = "0"  # every step replays
    workers.start("alpha")
    workers.start("beta")
    http.script("/gone", Reply(404, f"nothing for {PASSWORD}".encode()))  # echoes it
    client.set_setting("pw", PASSWORD)

    source = textwrap.dedent("""\
        import flow_api

        def handler(system, this, inputs):
            base = inputs['base']
            pw = system.setting('pw').get('value')
            total = 0
            for n in range(5):
                got = this.task('REST', url=base + '/count/' + str(n), name='n' + str(n),
                                password=pw, username='robot')
                total += got.get('output_value')['status_code']
            gone = this.task('REST', url=base + '/gone', wait=system.return_when.ALL_ENDED,
                             password=pw, username='robot')
            this.save(output_value={'total': total, 'gone': gone.get('status')})
            this.log(gone.get('message'))
            this.task('REST', url=base + '/gone', password=pw, username='robot')
            return this.success('done')
    """)
    handle = flowrt.start(write_flow(tmp_path, source), {"base": http.base_url}).wait(120)

    record = handle.record()
    assert record.status is Status.ENDED_ERROR
    assert "answered 404: nothing for ***" in (record.message or "")
    assert record.outputs == {"total": 1000, "gone": "ENDED_ERROR"}
    # Every step replayed the calls before it, yet each URL was called exactly once.
    assert [s.path for s in http.seen] == [f"/count/{n}" for n in range(5)] + ["/gone"] * 2
    assert all(s.headers["authorization"].startswith("Basic ") for s in http.seen)
    shown = json.dumps([sp.variables for sp in handle.savepoints()]) + workers.logs()
    shown += "".join(log.message for log in handle.logs()) + (record.error or "")
    assert "nothing for ***" in shown
    assert PASSWORD not in shown


DIVERGING_FLOW = """\
import flow_api
from pathlib import Path

def handler(system, this, inputs):
    password = system.setting('pw').get('value')
    where = Path(inputs['switch']).read_text()  # read outside the journal: replay differs
    url = inputs['base'].replace('://', '://robot:' + password + '@') + '/' + where
    this.task('REST', url=url, password=password)  # diverges
    end = this.save_dump('end')
    if end.restored == 0:
        this.error('first attempt')
    return this.success('unreachable')
"""


def test_a_divergence_at_an_inline_connection_shows_the_call_with_credentials_masked(
    client: Client, http: RecordingServer, tmp_path: Path
) -> None:
    client.set_setting("pw", PASSWORD)
    switch = tmp_path / "switch.txt"
    switch.write_text("first")
    handle = run(tmp_path, DIVERGING_FLOW, {"base": http.base_url, "switch": str(switch)})
    assert handle.status is Status.ENDED_ERROR

    switch.write_text("second")
    handle.restore("end", by="name").wait(60)

    record = handle.record()
    assert record.status is Status.ENDED_ERROR
    assert "replay diverged" in (record.error or "")
    assert "connect(None, connector_type='REST', url='http://robot:***@" in (record.error or "")
    assert "password='***'" in (record.error or "")
    assert PASSWORD not in shown_of(handle)
    assert [s.path for s in http.seen] == ["/first"]  # the diverged call was not made


SQL_FLOW = """\
import flow_api

def handler(system, this, inputs):
    this.task('SQL', url=inputs['url'], execute='CREATE TABLE t (n INTEGER)')
    this.connect(connector_type='sql', url=inputs['url'],
                 execute='INSERT INTO t VALUES (:n)', params={'n': 7})
    rows = this.task('Sql', {'url': inputs['url'], 'fetch': 'SELECT n FROM t'})
    try:
        this.task('SQL', url='nosuchdb+x://robot:' + inputs['pw'] + '@h/db', fetch='SELECT 1')
    except flow_api.InvalidCallError as error:
        refused = str(error)
    this.save(output_value={'rows': rows.get('output_value')['result'], 'refused': refused})
    return this.success('sql')
"""


def test_an_inline_sql_connection_runs_on_a_url_given_in_the_call(
    client: Client, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'inline.db'}"

    handle = run(tmp_path, SQL_FLOW, {"url": url, "pw": PASSWORD})

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs["rows"] == [{"n": 7}]
    refused = record.outputs["refused"]
    assert "SQL connection" in refused and "robot:***@h/db" in refused
    assert PASSWORD not in refused


def test_credentials_a_flow_reads_from_a_stored_connection_are_masked_where_it_prints_them(
    client: Client, tmp_path: Path
) -> None:
    client.set_connector("vault", "rest", base_url="https://robot:s3cr3t-pass@api.example")
    source = """\
import flow_api

def handler(system, this):
    config = system.connection('vault').get('value')
    this.log('using', config['base_url'])
    this.log(config=config)
    raise RuntimeError(f"cannot reach {config['base_url']}")
"""
    handle = client.start(write_flow(tmp_path, source)).wait(30)
    record = handle.record()
    assert record.status is Status.ENDED_ERROR
    lines = [line.message for line in handle.logs()]
    assert len(lines) == 2 and "https://robot:***@api.example" in lines[0], lines
    shown = " ".join([*lines, record.error or "", record.message or ""])
    assert "s3cr3t-pass" not in shown and "api.example" in record.message

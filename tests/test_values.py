"""Values the database would refuse are refused at the flow's line, before they get there.

Each refused call raises a `flow_api.FlowApiError` the flow can catch; it stores nothing. The
cases run on SQLite and on PostgreSQL, which refuses NUL, NaN and over-long names itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import write_flow

import flowrt
from flowrt.client import Client
from flowrt.connectors.base import KIND as CONNECTOR
from flowrt.status import Status

SURROGATE = "b'caf\\xe9'.decode('utf-8', 'surrogateescape')"

# The flow makes the call twice: the first time it catches the error and saves what it saw,
# the second time the error ends the execution at that line.
CATCHING = """\
import threading, time
import flow_api

def handler(system, this):
    try:
        {call}
    except flow_api.FlowApiError as error:
        this.save(output_value={{'caught': type(error).__name__, 'says': str(error)}})
    {call}
"""
UNCAUGHT_LINE = 9


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, flowrt_env: Callable[..., dict[str, str]]) -> Client:
    """The embedded client (in-process worker) on SQLite or on the PostgreSQL test database."""
    if request.param == "postgresql":
        flowrt_env(FLOWRT_DATABASE_URL=request.getfixturevalue("pg_clean"))
    return flowrt.default_client()


def run_catching(tmp_path: Path, call: str) -> flowrt.Handle:
    return flowrt.start(write_flow(tmp_path, CATCHING.format(call=call))).wait(30)


def assert_refused_at_its_line(handle: flowrt.Handle, error: str, *says: str) -> None:
    record = handle.record()
    assert record.status is Status.ENDED_ERROR, (record.status, record.message)
    assert record.error_line == UNCAUGHT_LINE
    assert (record.message or "").startswith(f"{error}: ")
    assert record.outputs["caught"] == error
    for text in says:
        assert text in record.outputs["says"], record.outputs["says"]
        assert text in (record.message or "")
    # The refused calls made no savepoint: the only one is the save in the except clause.
    assert [sp.call for sp in handle.savepoints()] == ["save"]


UNSTORABLE = [
    ("this.log('a\\x00b')", "the log line", "NUL character"),
    (f"this.log('x', {SURROGATE})", "the log line", "cannot be encoded as UTF-8"),
    ("this.save(message='a\\x00b')", "message", "NUL character"),
    (f"this.save(message={SURROGATE})", "message", "UTF-8"),
    ("this.save(output_value={'x': float('nan')})", "output_value['x']", "NaN and Infinity"),
    ("this.save(output_value={'x': [1, float('-inf')]})", "output_value['x'][1]", "-inf"),
    ("this.save(output_value={'k\\x00': 1})", "a key of output_value", "NUL"),
    (f"this.save(output_value={{'x': {SURROGATE}}})", "output_value['x']", "UTF-8"),
    ("this.save_dump('n' * 300)", "the savepoint name", "300 characters long, the limit is 200"),
    ("this.save_dump('a\\x00b')", "the savepoint name", "NUL"),
    ("this.error('a\\x00b')", "message", "NUL"),
    ("this.success('a\\x00b')", "message", "NUL"),
    ("system.setting('s').save(value=float('inf'))", "value", "NaN and Infinity"),
    ("system.setting('s').save(value={'a': 'b\\x00'})", "value['a']", "NUL"),
    ("system.setting('s\\x00').save(value=1)", "the setting name", "NUL"),
    ("system.setting('s' * 201).get()", "the setting name", "201 characters long"),
    ("system.file('f').save(content='a\\x00b')", "content", "NUL"),
    (f"system.file({SURROGATE}).exists()", "the file name", "UTF-8"),
    ("this.connect('db\\x00')", "the connector name", "NUL"),
    ("this.flow('child\\x00')", "the flow name", "NUL"),
    ("this.flow('child', inputs={'x': float('nan')})", "inputs['x']", "NaN"),
    ("this.load_dump('a\\x00b', by='name')", "the savepoint ref", "NUL"),
]


@pytest.mark.parametrize(("call", "what", "says"), UNSTORABLE, ids=[c[0] for c in UNSTORABLE])
def test_a_value_the_database_would_refuse_is_refused_at_the_flows_line_and_stores_nothing(
    backend: Client, tmp_path: Path, call: str, what: str, says: str
) -> None:
    handle = run_catching(tmp_path, call)

    assert_refused_at_its_line(handle, "UnstorableValueError", f"{what} cannot be stored", says)
    assert handle.logs() == []
    assert backend.list_named("setting") == [] and backend.list_named("file") == []


BAD_ARGUMENTS = [
    ("this.sleep(float('inf'))", "must be a finite number"),
    ("this.sleep(float('nan'))", "must be a finite number"),
    ("this.sleep(1e12)", "the longest sleep is 315360000 s (10 years)"),
    ("this.sleep(10**400)", "must be a finite number"),
    ("this.sleep(-1)", "must not be negative"),
    ("this.sleep('soon')", "must be a number, not str"),
    ("this.sleep_until(1e20)", "more than 10 years"),
    ("this.sleep_until(time.time() + 11 * 365 * 86400)", "more than 10 years"),
    ("this.sleep_until(float('nan'))", "must be a finite number"),
    ("this.save_dump(threading.Lock())", "the savepoint name must be a str, not lock"),
    ("system.setting(7).get()", "the setting name must be a str, not int"),
    ("this.connect('')", "the connector name must not be empty"),
]


@pytest.mark.parametrize(("call", "says"), BAD_ARGUMENTS, ids=[c[0] for c in BAD_ARGUMENTS])
def test_a_bad_argument_is_an_invalid_call_error_at_the_flows_line_not_an_internal_error(
    backend: Client, tmp_path: Path, call: str, says: str
) -> None:
    handle = run_catching(tmp_path, call)

    record = handle.record()
    assert "internal error" not in (record.message or "")
    assert record.status is Status.ENDED_ERROR and record.error_line == UNCAUGHT_LINE
    assert record.outputs["caught"] == "InvalidCallError"
    assert says in record.outputs["says"] and says in (record.message or "")


@pytest.mark.parametrize(
    ("call", "says"),
    [
        ("system.setting('lock').save(value=threading.Lock())", "not JSON serializable"),
        ("system.setting('lock').save(value=(l := []).append(l) or l)", "Circular reference"),
    ],
)
def test_a_value_that_cannot_be_serialised_is_refused_at_the_flows_line(
    backend: Client, tmp_path: Path, call: str, says: str
) -> None:
    handle = run_catching(tmp_path, call)

    record = handle.record()
    assert record.status is Status.ENDED_ERROR and record.error_line == UNCAUGHT_LINE
    assert record.outputs["caught"] == "SerializationError"
    assert "value must be JSON-serialisable" in record.outputs["says"]
    assert says in record.outputs["says"]
    assert backend.get_setting("lock") is None


LIMITS_FLOW = """\
import flow_api

def handler(system, this):
    mark = this.save_dump('n' * 200)
    system.setting('s' * 200).save(value={'text': 'café ✓', 'n': 1.5})
    this.log('café', '✓')
    this.sleep(0)
    this.save(output_value={'name': mark.name}, message='ünïcode')
    return this.success('done')
"""


def test_values_at_the_limits_are_stored_and_read_back(backend: Client, tmp_path: Path) -> None:
    handle = flowrt.start(write_flow(tmp_path, LIMITS_FLOW)).wait(30)

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs == {"name": "n" * 200} and record.message == "done"
    assert backend.get_setting("s" * 200) == {"text": "café ✓", "n": 1.5}
    assert [line.message for line in handle.logs()] == ["café ✓"]


@pytest.mark.parametrize(
    ("inputs", "says"),
    [
        ({"a": float("nan")}, "inputs['a'] cannot be stored"),
        ({"a": ["ok", "b\x00"]}, "inputs['a'][1] cannot be stored: it holds a NUL"),
    ],
)
def test_inputs_the_database_would_refuse_are_refused_at_start(
    backend: Client, tmp_path: Path, inputs: dict[str, object], says: str
) -> None:
    path = write_flow(tmp_path, "import flow_api\ndef handler(system, this):\n    pass\n")
    with pytest.raises(flowrt.FlowApiError, match=r"start: .*") as caught:
        flowrt.start(path, inputs)
    assert says in str(caught.value)
    assert backend.list_executions() == []


def test_a_setting_the_database_would_refuse_is_refused_by_the_client(backend: Client) -> None:
    with pytest.raises(flowrt.FlowApiError, match="NaN and Infinity cannot be stored"):
        backend.set_setting("s", {"x": float("nan")})
    with pytest.raises(flowrt.FlowApiError, match="201 characters long, the limit is 200"):
        backend.set_setting("s" * 201, 1)
    assert backend.list_named("setting") == []


# --- connectors --------------------------------------------------------------------------------

CONNECT_FLOW = """\
import flow_api

def handler(system, this):
    try:
        this.connect('broken', fetch='SELECT 1')
    except flow_api.ConnectorConfigError as error:
        this.save(output_value={'caught': str(error)})
    this.connect('broken', fetch='SELECT 1')
"""


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({"type": "sql", "url": "not a url"}, "'not a url' is not a SQLAlchemy URL"),
        ({"type": "sql", "url": "nosuchdb://h/d"}, "names the backend 'nosuchdb'"),
        ({"type": "rest", "base_url": "not a url"}, "is not an http(s) URL with a host"),
        ({"type": "ftp", "url": "ftp://h"}, "connection type 'FTP' is not supported by flowrt"),
    ],
)
def test_a_connector_stored_with_a_bad_configuration_fails_the_call_at_the_flows_line(
    backend: Client, tmp_path: Path, config: dict[str, str], says: str
) -> None:
    # As a row written before configurations were checked, or by hand, would be.
    backend.store.put_named(CONNECTOR, "broken", config)

    handle = flowrt.start(write_flow(tmp_path, CONNECT_FLOW)).wait(30)

    record = handle.record()
    assert record.status is Status.ENDED_ERROR and record.error_line == 8
    assert says in record.outputs["caught"]
    assert (record.message or "").startswith("ConnectorConfigError: connector 'broken' is ")
    assert "internal error" not in (record.message or "")


@pytest.mark.parametrize(
    ("type_name", "config", "says"),
    [
        ("sql", {"url": "not a url"}, "'not a url' is not a SQLAlchemy URL"),
        ("sql", {"url": "nosuchdb://h/d"}, "SQLAlchemy does not know"),
        ("rest", {"base_url": "not a url"}, "not an http(s) URL with a host"),
        ("rest", {"base_url": "ftp://files.example"}, "not an http(s) URL"),
        ("rest", {"base_url": "https://"}, "not an http(s) URL with a host"),
        ("rest", {"base_url": "http://h", "timeout_s": -1}, "must be a positive number"),
        ("rest", {"base_url": "http://h", "headers": {"X": 1}}, "headers must map names to text"),
    ],
)
def test_a_connector_configuration_its_type_cannot_use_is_refused_when_set(
    backend: Client, type_name: str, config: dict[str, object], says: str
) -> None:
    with pytest.raises(flowrt.FlowApiError) as caught:
        backend.set_connector("x", type_name, **config)

    assert type(caught.value).__name__ == "ConnectorConfigError"
    assert says in str(caught.value) and "flowrt connector set x" in str(caught.value)
    assert backend.list_named("connector") == []


def test_a_good_connector_configuration_is_accepted_when_set(backend: Client) -> None:
    backend.set_connector("db", "sql", url="sqlite:///somewhere.db")
    backend.set_connector("api", "rest", base_url="https://api.example/v1", timeout_s=5)
    assert sorted(r.name for r in backend.list_named("connector")) == ["api", "db"]


@pytest.mark.parametrize(
    "raised",
    ["ValueError('bad\\x00byte')", "ValueError(b'caf\\xe9'.decode('utf-8', 'surrogateescape'))"],
    ids=["nul", "surrogate"],
)
def test_a_flows_own_error_with_text_the_database_refuses_still_ends_it_with_that_error(
    backend: Client, tmp_path: Path, raised: str
) -> None:
    source = "import flow_api\n\ndef handler(system, this):\n    this.log('x')\n"
    source += f"    raise {raised}\n"
    handle = backend.start(write_flow(tmp_path, source, "raises"))
    record = handle.wait(30).record()
    assert record.status is Status.ENDED_ERROR
    assert record.error_line == 5
    assert (record.message or "").startswith("ValueError: ")  # its own error, shown escaped
    assert "\\x00" in (record.message or "") or "\\udce9" in (record.message or "")

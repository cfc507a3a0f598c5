"""Starting a bad flow is a clear one-line error: exit code 2 from the CLI, a FlowrtError from
`flowrt.start`, nothing stored; a child flow that cannot start is an error at its parent's line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT, wait_until, write_flow

import flowrt
import flowrt.script
from flowrt.cli import main
from flowrt.client import Client
from flowrt.status import Status

FLOWRT = Path(sys.executable).parent / "flowrt"  # the console script of this virtualenv
HANDLER = "\n\ndef handler(system, this):\n    return this.success('ran')\n"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def env(
    request: pytest.FixtureRequest, flowrt_env: Callable[..., dict[str, str]]
) -> dict[str, str]:
    """FLOWRT_* of the embedded default, on SQLite or on the PostgreSQL test database."""
    if request.param == "postgresql":
        return flowrt_env(FLOWRT_DATABASE_URL=request.getfixturevalue("pg_clean"))
    return flowrt_env()


def flowrt_process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLOWRT), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def write_bytes(tmp_path: Path, data: bytes, name: str = "flow") -> str:
    path = tmp_path / f"{name}.py"
    path.write_bytes(data)
    return str(path)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *says: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for text in says:
        assert text in lines[0], lines[0]


BAD_FLOWS: list[tuple[str, bytes, tuple[str, ...]]] = [
    (
        "module-level-sys-exit-0",
        b"import sys\nimport flow_api\nsys.exit(0)\n" + HANDLER.encode(),
        ("cannot start (line 3)", "its module body raised SystemExit: 0"),
    ),
    (
        "module-level-base-exception",
        b"class Bail(BaseException):\n    pass\n\nraise Bail('out')\n" + HANDLER.encode(),
        ("cannot start (line 4)", "raised Bail: out"),
    ),
    (
        "latin-1-source",
        "import flow_api\n# café\n".encode("latin-1") + HANDLER.encode(),
        ("cannot start (line 2)", "is not UTF-8 text (byte 0xe9 at offset 21)", "save it as UTF-8"),
    ),
    (
        "binary-file",
        bytes(range(256)) * 4,
        ("is not UTF-8 text (byte 0x80",),
    ),
    (
        "nul-in-source",
        b"import flow_api\nx = 1\x00\n" + HANDLER.encode(),
        ("cannot start (line 2)", "its source holds a NUL character"),
    ),
]


@pytest.mark.parametrize(("case", "data", "says"), BAD_FLOWS, ids=[c[0] for c in BAD_FLOWS])
def test_run_of_a_bad_flow_is_one_clear_line_with_exit_code_2_and_starts_nothing(
    env: dict[str, str], tmp_path: Path, case: str, data: bytes, says: tuple[str, ...]
) -> None:
    result = flowrt_process(env, "run", write_bytes(tmp_path, data, case.replace("-", "_")))

    assert_one_line_error(result, *says)
    assert flowrt.default_client().list_executions() == []


@pytest.mark.parametrize(("case", "data", "says"), BAD_FLOWS, ids=[c[0] for c in BAD_FLOWS])
def test_flowrt_start_of_a_bad_flow_raises_a_script_error(
    env: dict[str, str], tmp_path: Path, case: str, data: bytes, says: tuple[str, ...]
) -> None:
    with pytest.raises(flowrt.ScriptError) as caught:
        flowrt.start(write_bytes(tmp_path, data))
    for text in says:
        assert text in str(caught.value)
    assert flowrt.default_client().list_executions() == []


def test_registering_a_flow_that_is_not_utf8_is_refused_with_exit_code_2(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = write_bytes(tmp_path, "# café\n".encode("latin-1") + HANDLER.encode())
    result = flowrt_process(env, "flow", "set", "latin", path)

    assert_one_line_error(result, "flow 'latin' cannot start (line 1)", "is not UTF-8 text")
    assert flowrt.default_client().list_named("flow") == []


def test_a_flow_name_over_200_characters_is_refused_at_start_with_exit_code_2(
    env: dict[str, str], tmp_path: Path
) -> None:
    long = write_flow(tmp_path, "import flow_api" + HANDLER, "f" * 201)
    result = flowrt_process(env, "run", long)

    assert_one_line_error(result, "its name cannot be stored: it is 201 characters long")
    with pytest.raises(flowrt.ScriptError, match="the limit is 200"):
        flowrt.start(long)
    assert flowrt.default_client().list_executions() == []

    exact = flowrt.start(write_flow(tmp_path, "import flow_api" + HANDLER, "f" * 200)).wait(30)
    assert exact.status is Status.ENDED_SUCCESS


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_a_nan_or_infinite_input_is_refused_at_start_with_exit_code_2(
    env: dict[str, str], tmp_path: Path, value: str
) -> None:
    path = write_flow(tmp_path, "import flow_api" + HANDLER)
    result = flowrt_process(env, "run", path, "--input", "ok=1", "--input", f"a={value}")

    assert_one_line_error(result, "inputs['a'] cannot be stored", "NaN and Infinity")
    assert flowrt.default_client().list_executions() == []


def test_a_module_body_that_never_finishes_is_refused_after_the_load_timeout(
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(flowrt.script, "LOAD_TIMEOUT_S", 0.5)
    source = "import flow_api\nn = 0\nwhile True:\n    n += 1\n" + HANDLER
    path = write_flow(tmp_path, source, "spin")

    monkeypatch.setattr(sys, "argv", ["flowrt", "run", path])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    # The line the loop was running when its time was up: the `while` or its body.
    assert re.match(r"error: flow 'spin' cannot start \(line [34]\): ", err), err
    assert "its module body did not finish within 0.5 s" in err
    assert flowrt.default_client().list_executions() == []

    with pytest.raises(flowrt.ScriptError, match="did not finish within 0.5 s"):
        flowrt.start(path)
    # The spinning module bodies were interrupted: their threads end.
    wait_until(
        lambda: not [t for t in threading.enumerate() if t.name == "flowrt-check-spin"],
        10,
        "the module bodies to be interrupted",
    )


# --- a child flow that cannot start ---------------------------------------------------------

PARENT = """\
import flow_api

def handler(system, this):
    try:
        this.flow({child!r})
    except flow_api.FlowApiError as error:
        this.save(output_value={{'caught': type(error).__name__, 'says': str(error)}})
    this.flow({child!r})
"""


@pytest.mark.parametrize(
    ("child", "error", "says"),
    [
        ("import sys\nsys.exit()\n" + HANDLER, "ScriptError", "raised SystemExit"),
        ("raise KeyError('k')\n" + HANDLER, "ScriptError", "KeyError"),
        ("def handler(this):\n    pass\n", "ScriptError", "must take (system, this)"),
        (None, "FlowNotFoundError", "neither a file nor a registered flow"),
    ],
    ids=["sys-exit", "exception", "bad-handler", "missing"],
)
def test_a_child_flow_that_cannot_start_is_a_flow_api_error_at_the_parents_line(
    env: dict[str, str], tmp_path: Path, child: str | None, error: str, says: str
) -> None:
    child_path = str(tmp_path / "child.py")
    if child is not None:
        write_flow(tmp_path, child, "child")
    source = PARENT.format(child=child_path)

    handle = flowrt.start(write_flow(tmp_path, source, "parent")).wait(30)

    record = handle.record()
    assert record.status is Status.ENDED_ERROR, (record.status, record.message)
    assert record.error_line == 8
    assert record.outputs["caught"] == error and says in record.outputs["says"]
    assert (record.message or "").startswith(f"{error}: ")
    assert handle.children() == []


def test_every_flow_api_error_a_flow_asks_for_is_caught_by_except_flow_api_error(
    env: dict[str, str], tmp_path: Path
) -> None:
    source = """\
import flow_api

def handler(system, this):
    caught = []
    for attempt in (
        lambda: system.setting('missing').get(),
        lambda: system.file('missing').get(),
        lambda: this.flow('not-registered'),
        lambda: this.load_dump('nowhere', by='name'),
        lambda: this.load_dump('not-an-id'),
        lambda: this.connect('nobody'),
        lambda: this.get('colour'),
    ):
        try:
            attempt()
        except flow_api.FlowApiError as error:
            caught.append(type(error).__name__)
    return this.save(output_value={'caught': caught})
"""
    client: Client = flowrt.default_client()
    handle = flowrt.start(write_flow(tmp_path, source)).wait(30)

    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert client.get(handle.id).outputs["caught"] == [
        "NotFoundError",
        "NotFoundError",
        "FlowNotFoundError",
        "SavepointNotFoundError",
        "SavepointNotFoundError",
        "ConnectorNotFoundError",
        "InvalidCallError",
    ]


# --- the CLI refuses configuration the workers could not use -------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--type", "sql", "--url", "not a url"), "'not a url' is not a SQLAlchemy URL"),
        (("--type", "sql", "--url", "nosuchdb://h/db"), "names the backend 'nosuchdb'"),
        (("--type", "rest", "--base-url", "not a url"), "is not an http(s) URL with a host"),
        (("--type", "rest", "--base-url", "http://h", "--timeout", "nan"), "NaN and Infinity"),
        (("--type", "rest", "--base-url", "http://h", "--timeout", "0"), "positive number"),
    ],
)
def test_connector_set_with_a_configuration_its_type_cannot_use_exits_2_and_saves_nothing(
    env: dict[str, str], args: tuple[str, ...], says: str
) -> None:
    result = flowrt_process(env, "connector", "set", "x", *args)

    assert_one_line_error(result, says)
    assert flowrt.default_client().list_named("connector") == []


def test_setting_set_with_a_nan_value_exits_2_and_saves_nothing(env: dict[str, str]) -> None:
    result = flowrt_process(env, "setting", "set", "s", "NaN")

    assert_one_line_error(result, "the value cannot be stored", "NaN and Infinity")
    assert flowrt.default_client().list_named("setting") == []

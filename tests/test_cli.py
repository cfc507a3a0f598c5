"""The `flowrt` command on the embedded default: SQLite, in-process worker, memory:// broker."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import ROOT, wait_until, write_flow

from flowrt.cli import cli, main
from flowrt.status import Status
from flowrt.storage import SavepointRecord, SqlStore, open_store

FLOWRT = Path(sys.executable).parent / "flowrt"  # the console script of this virtualenv

GOOD_FLOW = """\
import flow_api


def handler(system, this, inputs):
    greeting = 'hello ' + str(inputs['who'])
    this.log('greeting', greeting)
    mark = this.save_dump('marked')
    this.save(output_value={'greeting': greeting, 'restored': mark.restored})
    return this.success('all done')
"""

FAILS_ONCE_FLOW = """\
import flow_api


def handler(system, this):
    attempt = 'first'
    this.log('before the savepoint')
    mark = this.save_dump('retry-here')
    if mark.restored == 0:
        raise RuntimeError('boom on the first attempt')
    this.save(output_value={'restored': mark.restored, 'attempt': attempt})
    return this.success('recovered')
"""


@pytest.fixture
def env(flowrt_env: Callable[..., dict[str, str]]) -> dict[str, str]:
    """The FLOWRT_* variables of this test (embedded SQLite, memory:// broker)."""
    return flowrt_env()


@pytest.fixture
def store(env: dict[str, str]) -> Iterator[SqlStore]:
    """A store of its own on the test's database, to check what the CLI did."""
    opened = open_store(env["FLOWRT_DATABASE_URL"])
    yield opened
    opened.close()


def invoke(*args: str) -> Result:
    """Run `flowrt ARGS` in this process; exceptions stay on `result.exception`."""
    return CliRunner().invoke(cli, list(args))


def flowrt_process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `flowrt ARGS` as its own process with the test's environment,
    from the repository root (where the examples' paths start)."""
    return subprocess.run(
        [str(FLOWRT), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def run_flow(path: str, *args: str) -> tuple[Result, str]:
    """`flowrt run PATH ARGS`; returns the result and the execution id it printed."""
    result = invoke("run", path, *args)
    found = re.search(r"execution ([0-9a-f-]{36})", result.stdout)
    assert found, result.output
    return result, found.group(1)


def _listed(output: str, sp: SavepointRecord) -> bool:
    pattern = rf"#{sp.seq}\s+{sp.call}\s+line {sp.line}\b"
    return re.search(pattern, output) is not None


# --- run --------------------------------------------------------------------------------------


def test_run_exits_zero_on_success_and_prints_each_savepoint_and_the_outputs(
    env: dict[str, str], tmp_path: Path, store: SqlStore
) -> None:
    path = write_flow(tmp_path, GOOD_FLOW)
    result, execution_id = run_flow(path, "--input", "who=world")

    assert result.exit_code == 0, result.output
    record = store.get_execution(execution_id)
    assert record.status is Status.ENDED_SUCCESS
    assert record.inputs == {"who": "world"}
    savepoints = store.list_savepoints(execution_id)
    assert [sp.call for sp in savepoints] == ["log", "save_dump", "save", "success"]
    for sp in savepoints:
        assert _listed(result.stdout, sp), f"savepoint #{sp.seq} missing:\n{result.stdout}"
    assert "name=marked" in result.stdout
    assert "ENDED_SUCCESS" in result.stdout
    outputs_line = next(line for line in result.stdout.splitlines() if "outputs" in line)
    assert json.loads(outputs_line.split("outputs", 1)[1]) == {
        "greeting": "hello world",
        "restored": 0,
    }


def test_run_parses_input_values_as_json_when_it_can(
    env: dict[str, str], tmp_path: Path, store: SqlStore
) -> None:
    path = write_flow(tmp_path, GOOD_FLOW)
    result, execution_id = run_flow(path, "-i", "who=42", "-i", "extra=[1, 2]")
    assert result.exit_code == 0, result.output
    assert store.get_execution(execution_id).inputs == {"who": 42, "extra": [1, 2]}
    assert store.get_execution(execution_id).outputs["greeting"] == "hello 42"


def test_run_refuses_an_input_that_is_not_key_value(env: dict[str, str], tmp_path: Path) -> None:
    result = invoke("run", write_flow(tmp_path, GOOD_FLOW), "--input", "novalue")
    assert result.exit_code == 2
    assert "KEY=VALUE" in result.stderr


def test_run_exits_non_zero_on_ended_error_and_shows_the_traceback(
    env: dict[str, str], tmp_path: Path, store: SqlStore
) -> None:
    result, execution_id = run_flow(write_flow(tmp_path, FAILS_ONCE_FLOW))
    assert result.exit_code != 0
    assert "ENDED_ERROR" in result.stdout
    assert "RuntimeError: boom on the first attempt" in result.stderr
    record = store.get_execution(execution_id)
    assert record.status is Status.ENDED_ERROR
    assert record.error_line == 9
    assert store.list_savepoints(execution_id), "savepoints are kept for a restore"


# --- looking ----------------------------------------------------------------------------------


def _two_executions(tmp_path: Path) -> tuple[str, str]:
    ok_result, ok_id = run_flow(write_flow(tmp_path, GOOD_FLOW, "good"), "-i", "who=you")
    bad_result, bad_id = run_flow(write_flow(tmp_path, FAILS_ONCE_FLOW, "bad"))
    assert (ok_result.exit_code, bad_result.exit_code != 0) == (0, True)
    return ok_id, bad_id


def test_executions_lists_newest_first_as_text_and_json_and_filters_by_status(
    env: dict[str, str], tmp_path: Path
) -> None:
    ok_id, bad_id = _two_executions(tmp_path)

    text = invoke("executions")
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert bad_id in lines[0] and "ENDED_ERROR" in lines[0] and "bad" in lines[0]
    assert ok_id in lines[1] and "ENDED_SUCCESS" in lines[1] and "good" in lines[1]

    listed = json.loads(invoke("executions", "--json").stdout)
    assert [(e["id"], e["status"], e["flow_name"]) for e in listed] == [
        (bad_id, "ENDED_ERROR", "bad"),
        (ok_id, "ENDED_SUCCESS", "good"),
    ]
    assert listed[1]["outputs"] == {"greeting": "hello you", "restored": 0}

    errored = json.loads(invoke("executions", "--json", "--status", "ENDED_ERROR").stdout)
    assert [e["id"] for e in errored] == [bad_id]
    assert json.loads(invoke("executions", "--json", "--status", "PAUSED").stdout) == []
    assert invoke("executions", "--status", "NOPE").exit_code == 2


def test_show_prints_status_outputs_and_error_as_text_and_json(
    env: dict[str, str], tmp_path: Path
) -> None:
    ok_id, bad_id = _two_executions(tmp_path)

    shown = invoke("show", ok_id)
    assert shown.exit_code == 0, shown.output
    assert ok_id in shown.stdout
    assert re.search(r"status\s+ENDED_SUCCESS", shown.stdout)
    assert '"greeting": "hello you"' in shown.stdout
    assert re.search(r"message\s+all done", shown.stdout)
    assert re.search(r"worker\s+none \(not loaded in any worker\)", shown.stdout)

    data = json.loads(invoke("show", ok_id, "--json").stdout)
    assert data["worker"] is None and data["lease_until"] is None
    assert data["id"] == ok_id
    assert data["status"] == "ENDED_SUCCESS"
    assert data["outputs"] == {"greeting": "hello you", "restored": 0}
    assert data["inputs"] == {"who": "you"}

    failed = json.loads(invoke("show", bad_id, "--json").stdout)
    assert failed["status"] == "ENDED_ERROR"
    assert "boom on the first attempt" in failed["error"]
    assert failed["error_line"] == 9
    assert "boom on the first attempt" in invoke("show", bad_id).stdout


def test_savepoints_shows_seq_id_name_call_line_timestamp_and_variables(
    env: dict[str, str], tmp_path: Path, store: SqlStore
) -> None:
    result, execution_id = run_flow(write_flow(tmp_path, GOOD_FLOW), "-i", "who=world")
    assert result.exit_code == 0, result.output
    records = store.list_savepoints(execution_id)

    shown = invoke("savepoints", execution_id)
    assert shown.exit_code == 0, shown.output
    for sp in records:
        row = next((line for line in shown.stdout.splitlines() if sp.id in line), None)
        assert row is not None, f"savepoint {sp.id} missing:\n{shown.stdout}"
        assert _listed(row, sp), row
        assert f"{sp.created_at:%H:%M:%S}" in row
        if sp.name:
            assert f"name={sp.name}" in row
    assert "greeting = 'hello world'" in shown.stdout
    assert "save_dump" in shown.stdout and "name=marked" in shown.stdout

    listed = json.loads(invoke("savepoints", execution_id, "--json").stdout)
    assert [(s["seq"], s["id"], s["call"], s["line"], s["name"]) for s in listed] == [
        (sp.seq, sp.id, sp.call, sp.line, sp.name) for sp in records
    ]
    assert [s["line"] for s in listed] == [6, 7, 8, 9]
    assert all(s["created_at"] for s in listed)
    assert listed[1]["variables"]["greeting"] == "'hello world'"
    assert [s["head"] for s in listed] == [False, False, False, True]


def test_logs_prints_what_the_flow_logged(env: dict[str, str], tmp_path: Path) -> None:
    result, execution_id = run_flow(write_flow(tmp_path, GOOD_FLOW), "-i", "who=world")
    assert result.exit_code == 0, result.output
    shown = invoke("logs", execution_id)
    assert shown.exit_code == 0, shown.output
    assert "greeting hello world" in shown.stdout
    assert re.search(r"line 6\b", shown.stdout)
    logged = json.loads(invoke("logs", execution_id, "--json").stdout)
    assert [entry["message"] for entry in logged] == ["greeting hello world"]


# --- changing ---------------------------------------------------------------------------------


def test_restore_by_name_reruns_an_errored_execution_to_success(
    env: dict[str, str], tmp_path: Path, store: SqlStore
) -> None:
    result, execution_id = run_flow(write_flow(tmp_path, FAILS_ONCE_FLOW))
    assert result.exit_code != 0
    assert store.get_execution(execution_id).status is Status.ENDED_ERROR

    restored = invoke("restore", execution_id, "retry-here", "--by", "name")
    assert restored.exit_code == 0, restored.output
    assert f"restored {execution_id}" in restored.stdout

    def ended() -> bool:
        return store.get_execution(execution_id).status.ended

    wait_until(ended, 30, "the restored execution to end")
    record = store.get_execution(execution_id)
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs == {"restored": 1, "attempt": "first"}
    assert "ENDED_SUCCESS" in restored.stdout
    named = [sp for sp in store.list_savepoints(execution_id) if sp.name == "retry-here"]
    assert [sp.restored for sp in named] == [1]


def test_restore_by_id_of_a_savepoint_of_another_execution_is_refused(
    env: dict[str, str], tmp_path: Path, store: SqlStore
) -> None:
    _, bad_id = run_flow(write_flow(tmp_path, FAILS_ONCE_FLOW, "bad"))
    _, other_id = run_flow(write_flow(tmp_path, FAILS_ONCE_FLOW, "other"))
    foreign = store.list_savepoints(other_id)[0]
    before = store.get_execution(bad_id)

    refused = flowrt_process(env, "restore", bad_id, foreign.id)
    assert refused.returncode == 2, refused.stderr
    assert "belongs to execution" in refused.stderr
    assert store.get_execution(bad_id) == before


def test_archive_removes_savepoints_but_show_and_logs_keep_status_outputs_and_logs(
    env: dict[str, str], tmp_path: Path
) -> None:
    result, execution_id = run_flow(write_flow(tmp_path, GOOD_FLOW), "-i", "who=world")
    assert result.exit_code == 0, result.output

    archived = invoke("archive", execution_id)
    assert archived.exit_code == 0, archived.output
    assert f"archived {execution_id}" in archived.stdout

    assert json.loads(invoke("savepoints", execution_id, "--json").stdout) == []
    assert "no savepoints" in invoke("savepoints", execution_id).stdout
    data = json.loads(invoke("show", execution_id, "--json").stdout)
    assert data["status"] == "ENDED_SUCCESS"
    assert data["outputs"] == {"greeting": "hello world", "restored": 0}
    assert data["archived_at"]
    assert "greeting hello world" in invoke("logs", execution_id).stdout


def test_archive_of_an_execution_that_has_not_ended_is_refused(
    env: dict[str, str], tmp_path: Path
) -> None:
    from flowrt.client import default_client

    source = "import flow_api\n\n\ndef handler(system, this):\n    this.sleep(3600)\n"
    handle = default_client().start(write_flow(tmp_path, source, "sleeper"))
    status = wait_until(
        lambda: handle.status if handle.status is not Status.RUNNING else None,
        30,
        "the flow to reach its sleep",
    )
    assert status is Status.WAITING, handle.record().error
    refused = flowrt_process(env, "archive", handle.id)
    assert refused.returncode == 2
    assert "cannot archive" in refused.stderr
    assert "WAITING" in refused.stderr
    assert handle.savepoints()


# --- connectors -------------------------------------------------------------------------------


def test_connector_set_sql_and_rest_then_list_as_json(env: dict[str, str], tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'data.db'}"
    sql = invoke("connector", "set", "database", "--type", "sql", "--url", db_url)
    assert sql.exit_code == 0, sql.output
    rest = invoke(
        "connector", "set", "remote-api", "--type", "rest", "--base-url", "http://127.0.0.1:9/api"
    )
    assert rest.exit_code == 0, rest.output

    listed = json.loads(invoke("connector", "list", "--json").stdout)
    assert {entry["name"]: entry["value"] for entry in listed} == {
        "database": {"type": "sql", "url": db_url},
        "remote-api": {"type": "rest", "base_url": "http://127.0.0.1:9/api"},
    }
    text = invoke("connector", "list").stdout
    assert "database" in text and "remote-api" in text


def test_connector_set_without_its_required_url_is_refused(env: dict[str, str]) -> None:
    result = flowrt_process(env, "connector", "set", "database", "--type", "sql")
    assert result.returncode != 0
    assert "url" in result.stderr
    assert json.loads(invoke("connector", "list", "--json").stdout) == []


# --- bad input --------------------------------------------------------------------------------


def test_start_on_the_memory_broker_refuses_with_a_clear_message(
    env: dict[str, str], tmp_path: Path, store: SqlStore
) -> None:
    result = invoke("start", write_flow(tmp_path, GOOD_FLOW))
    assert result.exit_code == 2
    assert "memory://" in result.stderr
    assert "flowrt run" in result.stderr
    assert store.list_executions() == []


def test_run_of_a_flow_that_does_not_compile_names_the_problem_and_line(
    env: dict[str, str], tmp_path: Path, store: SqlStore
) -> None:
    source = "import flow_api\n\n\ndef handler(system, this):\n    return this.success(\n"
    result = flowrt_process(env, "run", write_flow(tmp_path, source, "broken"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "does not compile" in result.stderr
    assert "line 5" in result.stderr
    assert "'broken'" in result.stderr
    assert "Traceback" not in result.stderr
    assert store.list_executions() == []


def test_run_of_a_flow_without_handler_names_the_problem(
    env: dict[str, str], tmp_path: Path, store: SqlStore
) -> None:
    source = "import flow_api\n\n\ndef main(system, this):\n    pass\n"
    result = flowrt_process(env, "run", write_flow(tmp_path, source, "nohandler"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "handler" in result.stderr
    assert "'nohandler'" in result.stderr
    assert "Traceback" not in result.stderr
    assert store.list_executions() == []


def test_run_of_a_missing_flow_file_says_so(env: dict[str, str], tmp_path: Path) -> None:
    result = flowrt_process(env, "run", str(tmp_path / "absent.py"))
    assert result.returncode == 2
    assert "absent.py" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["show", "savepoints", "logs", "archive"])
@pytest.mark.parametrize("bad_id", [str(uuid.UUID(int=7)), "not-an-id"])
def test_unknown_execution_id_is_a_clear_error_with_exit_code_2(
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    bad_id: str,
) -> None:
    monkeypatch.setattr(sys, "argv", ["flowrt", command, bad_id])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert f"no execution {bad_id!r}" in err
    assert "Traceback" not in err


def test_unknown_execution_id_exits_2_from_the_installed_command(env: dict[str, str]) -> None:
    missing = str(uuid.uuid4())
    result = flowrt_process(env, "restore", missing, "some-name", "--by", "name")
    assert result.returncode == 2
    assert f"no execution '{missing}'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_setting_is_a_clear_error_not_a_traceback(tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "FLOWRT_HOME": str(tmp_path), "FLOWRT_MAX_RESTORES": "many"}
    done = subprocess.run(
        [sys.executable, "-c", "from flowrt.cli import main; main()", "executions"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "FLOWRT_MAX_RESTORES='many' is not a valid int" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_examples_run_as_the_readme_says(env: dict[str, str], tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'demo.db'}"
    assert flowrt_process(env, "connector", "set", "demo-db", "--type", "sql", "--url", database)
    quick = flowrt_process(env, "run", "examples/quickstart.py", "--input", "rows=3")
    assert quick.returncode == 0, quick.stderr
    assert '"uploaded": ["item 0", "item 1", "item 2"], "restored": 1' in quick.stdout

    fanout = flowrt_process(env, "run", "examples/fanout.py", "--input", "n=4")
    assert fanout.returncode == 0, fanout.stderr
    assert '"squares": [1, 4, 9, 16], "sum": 30' in fanout.stdout
    assert "4 children done" in fanout.stdout

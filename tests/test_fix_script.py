"""Fixing a failed flow: check a corrected script against the journal, restore under it.

The flow fetches through a REST connector from a local server that counts the requests it
gets, saves a named savepoint, then divides by zero. Counters outside the execution prove
what a dry run and a restore under a corrected script performed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from conftest import LocalHttpServer, line_of, reply_json, write_flow

import flowrt
from flowrt.cli import cli
from flowrt.client import Client
from flowrt.errors import IncompatibleScriptError, InvalidStateError, TamperedSavepointError
from flowrt.script import script_hash
from flowrt.seals import check_execution
from flowrt.status import Status

FAILING = """\
import flow_api


def handler(system, this):
    page = this.connect('api', path='/items').get('output_value')
    this.log('fetched', page['status_code'])
    this.save_dump('fetched')
    count = len(page['json']['items']) // 0
    this.save(output_value={'count': count})
    return this.success('counted')
"""

# Lines shifted by comments at the top, and the bug fixed after the named savepoint.
FIXED = """\
# Fixed: count the items instead of dividing by zero.
# (these comments move every line of the flow down)
import flow_api


def handler(system, this):
    page = this.connect('api', path='/items').get('output_value')
    this.log('fetched', page['status_code'])
    this.save_dump('fetched')
    count = len(page['json']['items'])
    this.save(output_value={'count': count})
    return this.success('counted')
"""

# Changes a call before the savepoint: it fetches another path.
CHANGED_CALL = FIXED.replace("path='/items'", "path='/items?all=1'")

# Adds a call after the savepoint: a second fetch.
NEW_CALL_AFTER = FIXED.replace(
    "    count = len(page['json']['items'])\n",
    "    more = this.connect('api', path='/more').get('output_value')\n"
    "    count = len(page['json']['items']) + len(more['json']['items'])\n",
)

# Raises in its own code before the savepoint.
RAISES_BEFORE = FIXED.replace(
    "    this.log('fetched'", "    page = page['no such key']\n    this.log('fetched'"
)


class CountingApi(LocalHttpServer):
    """The outside system: answers GETs with two items and counts them per path."""

    def __init__(self) -> None:
        self.gets: dict[str, int] = {}
        self._lock = threading.Lock()
        super().__init__()

    def count(self, path: str | None = None) -> int:
        with self._lock:
            return self.gets.get(path, 0) if path else sum(self.gets.values())

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                with server._lock:
                    server.gets[self.path] = server.gets.get(self.path, 0) + 1
                reply_json(self, b'{"items": [1, 2]}')

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def api(client: Client) -> Iterator[CountingApi]:
    server = CountingApi()
    server.start()
    client.set_connector("api", "rest", base_url=server.base_url)
    yield server
    server.stop()


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def failed(tmp_path: Path) -> flowrt.Handle:
    handle = flowrt.start(write_flow(tmp_path, FAILING, "count")).wait(30)
    assert handle.status is Status.ENDED_ERROR, handle.record().error
    assert "ZeroDivisionError" in (handle.record().message or "")
    return handle


def stored_rows(client: Client, execution_id: str) -> list[tuple[object, ...]]:
    """The execution's row and its savepoints' rows, every column, as the database holds them."""
    with client.store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT * FROM executions WHERE id = ?", (execution_id.replace("-", ""),)
        ).all()
        rows += conn.exec_driver_sql(
            "SELECT * FROM savepoints WHERE execution_id = ? ORDER BY seq, created_at",
            (execution_id.replace("-", ""),),
        ).all()
    assert rows, "the execution's rows were not found"
    return [tuple(row) for row in rows]


# --- the proof, through the CLI -----------------------------------------------------------------


def test_a_corrected_script_restores_from_the_named_savepoint_and_fetches_once(
    api: CountingApi, tmp_path: Path
) -> None:
    handle = failed(tmp_path)
    fixed = write_flow(tmp_path, FIXED, "fixed")

    checked = invoke("check", handle.id, "--script", fixed, "--to", "fetched", "--by", "name")
    assert checked.exit_code == 0, checked.output
    assert "compatible up to savepoint #3 (fetched)" in checked.output
    assert api.count() == 1  # the dry run fetched nothing

    restored = invoke("restore", handle.id, "fetched", "--by", "name", "--script", fixed)
    assert restored.exit_code == 0, restored.output
    record = handle.wait(30).record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs == {"count": 2}
    assert api.count("/items") == 1  # performed once in total, by the first run
    assert record.source == FIXED


def test_a_script_changing_a_call_before_the_savepoint_is_refused_and_changes_nothing(
    api: CountingApi, client: Client, tmp_path: Path
) -> None:
    handle = failed(tmp_path)
    changed = write_flow(tmp_path, CHANGED_CALL, "changed")
    before = stored_rows(client, handle.id)

    checked = invoke("check", handle.id, "--script", changed, "--to", "fetched", "--by", "name")
    assert checked.exit_code == 1, checked.output
    old_line = line_of(FAILING, "this.connect(")
    new_line = line_of(CHANGED_CALL, "this.connect(")
    assert "differs from the journal at savepoint #1" in checked.output
    assert f"connect(…) at line {old_line} of the old script" in checked.output
    assert f"calls connect('api', path='/items?all=1') at line {new_line}" in checked.output
    assert "newest compatible savepoint: none" in checked.output

    refused = invoke("restore", handle.id, "fetched", "--by", "name", "--script", changed)
    assert refused.exit_code != 0
    assert isinstance(refused.exception, IncompatibleScriptError)
    assert f"at line {new_line}" in str(refused.exception)
    assert stored_rows(client, handle.id) == before
    assert api.count() == 1


def test_a_script_adding_a_call_after_the_savepoint_is_accepted_and_performs_it(
    api: CountingApi, tmp_path: Path
) -> None:
    handle = failed(tmp_path)
    report = flowrt.check(handle.id, NEW_CALL_AFTER, to="fetched", by="name")
    assert report.compatible, report.describe()
    assert report.to is not None and report.to.name == "fetched"

    handle.restore("fetched", by="name", script=NEW_CALL_AFTER).wait(30)
    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs == {"count": 4}
    assert (api.count("/items"), api.count("/more")) == (1, 1)


def test_the_flow_raising_during_the_dry_run_is_reported_at_its_line(
    api: CountingApi, tmp_path: Path
) -> None:
    handle = failed(tmp_path)
    checked = invoke("check", handle.id, "--script", write_flow(tmp_path, RAISES_BEFORE, "raises"))
    assert checked.exit_code == 1, checked.output
    line = line_of(RAISES_BEFORE, "page['no such key']")
    assert f"raises KeyError: 'no such key' at line {line}" in checked.output
    assert "newest compatible savepoint: #1" in checked.output
    assert api.count() == 1


def test_savepoints_and_show_say_which_script_each_savepoint_ran_under(
    api: CountingApi, client: Client, tmp_path: Path
) -> None:
    handle = failed(tmp_path)
    old, new = script_hash(FAILING), script_hash(FIXED)
    handle.restore("fetched", by="name", script=FIXED).wait(30)
    scripts = {(sp.seq, sp.script) for sp in handle.savepoints()}
    assert scripts == {(1, old), (2, old), (3, old), (4, new), (5, new)}

    listed = invoke("savepoints", handle.id)
    assert listed.exit_code == 0, listed.output
    assert f"script={old}" in listed.output and f"script={new}" in listed.output
    shown = invoke("show", handle.id)
    assert f"script       {new}" in shown.output
    assert f"#1-#3 under {old}; #4-#5 under {new}" in shown.output
    client.register_flow("count", write_flow(tmp_path, FIXED, "fixed"))  # the flow's own name
    shown = invoke("show", handle.id)
    assert f"#4-#5 under {new} (flow count version 1, as registered now)" in shown.output


# --- edges ---------------------------------------------------------------------------------------


def test_a_script_that_does_not_compile_is_reported_not_run(
    api: CountingApi, tmp_path: Path
) -> None:
    handle = failed(tmp_path)
    broken = FIXED.replace("def handler(system, this):", "def handler(system, this)")
    report = flowrt.check(handle.id, broken)
    assert not report.compatible
    assert "does not compile" in (report.problem or "")
    assert report.found_line == line_of(broken, "def handler")


def test_check_of_a_missing_script_or_execution_is_a_clear_error(
    api: CountingApi, tmp_path: Path
) -> None:
    handle = failed(tmp_path)
    missing = invoke("check", handle.id, "--script", str(tmp_path / "nope.py"))
    assert missing.exit_code != 0 and "no flow" in str(missing.exception)
    nobody = invoke("check", "not-an-id", "--script", write_flow(tmp_path, FIXED, "fixed"))
    assert nobody.exit_code != 0 and "not-an-id" in str(nobody.exception)
    with pytest.raises(flowrt.SavepointNotFoundError):
        flowrt.check(handle.id, FIXED, to="no-such-name", by="name")


def test_a_tampered_source_is_refused_by_the_check_before_anything_runs(
    api: CountingApi, client: Client, tmp_path: Path
) -> None:
    handle = failed(tmp_path)
    with client.store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE executions SET source = :s WHERE id = :i"),
            {"s": FAILING + "\n# edited\n", "i": handle.id.replace("-", "")},
        )
    with pytest.raises(TamperedSavepointError):
        flowrt.check(handle.id, FIXED)
    with pytest.raises(TamperedSavepointError):
        handle.restore("fetched", by="name", script=FIXED)


def test_a_script_restore_of_a_successful_execution_is_refused(
    api: CountingApi, tmp_path: Path
) -> None:
    handle = flowrt.start(write_flow(tmp_path, FIXED, "ok")).wait(30)
    assert handle.status is Status.ENDED_SUCCESS
    with pytest.raises(InvalidStateError):
        handle.restore("fetched", by="name", script=FIXED)
    with pytest.raises(InvalidStateError):
        handle.upgrade(FIXED)


def test_the_restored_execution_is_signed_for_its_new_script(
    api: CountingApi, client: Client, tmp_path: Path
) -> None:
    handle = failed(tmp_path)
    before = handle.record()
    handle.restore("fetched", by="name", script=FIXED).wait(30)
    after = handle.record()
    assert after.signature != before.signature
    check_execution(client.runtime.journal.signer, after)  # raises unless signed for FIXED
    with pytest.raises(TamperedSavepointError):  # the old signature does not cover FIXED
        check_execution(client.runtime.journal.signer, replace(after, signature=before.signature))
    report = flowrt.check(handle.id, FIXED)
    assert report.compatible, report.describe()


REACHES_OUT = """\
import flow_api


def handler(system, this):
    system.setting('marker').save(value='written by the flow')
    this.log('about to start a child')
    this.flow(CHILD, wait=True)
    this.save_dump('done')
    return 1 // 0
"""

CHILD = """\
import flow_api


def handler(system, this):
    this.log('child ran')
"""


def test_the_dry_run_performs_nothing_no_setting_log_child_or_fetch(
    api: CountingApi, client: Client, tmp_path: Path
) -> None:
    child = write_flow(tmp_path, CHILD, "child")
    source = REACHES_OUT.replace("CHILD", repr(child))
    handle = flowrt.start(write_flow(tmp_path, source, "parent")).wait(30)
    assert handle.status is Status.ENDED_ERROR, handle.record().error
    client.set_setting("marker", "set by hand afterwards")
    logs, children = len(handle.logs()), len(handle.children())
    before = stored_rows(client, handle.id)

    checked = invoke("check", handle.id, "--script", write_flow(tmp_path, source, "same"))
    assert checked.exit_code == 0, checked.output
    assert "compatible up to savepoint #4 (done)" in checked.output
    assert client.get_setting("marker") == "set by hand afterwards"
    assert (len(handle.logs()), len(handle.children())) == (logs, children) == (1, 1)
    assert stored_rows(client, handle.id) == before
    assert api.count() == 0


# --- many at once --------------------------------------------------------------------------------

BY_PATH = FAILING.replace("(system, this)", "(system, this, inputs)").replace(
    "path='/items'", "path=inputs['path']"
)
# The fix moves '/old/...' paths to '/v2/...': executions that fetched one no longer fit.
BY_PATH_FIXED = FIXED.replace("(system, this)", "(system, this, inputs)").replace(
    "path='/items'", "path=inputs['path'].replace('/old/', '/v2/')"
)


def test_a_bulk_restore_does_exactly_what_its_table_says(
    api: CountingApi, client: Client, tmp_path: Path
) -> None:
    paths = ["/items"] * 6 + ["/old/items"] * 4
    flow = write_flow(tmp_path, BY_PATH, "bypath")
    handles = [flowrt.start(flow, {"path": path}) for path in paths]
    other = failed(tmp_path)  # an errored execution of another flow: left alone
    for handle in handles:
        assert handle.wait(30).status is Status.ENDED_ERROR
    fits = {h.id for h, path in zip(handles, paths, strict=True) if path == "/items"}
    before = {h.id: stored_rows(client, h.id) for h in [*handles, other]}
    fixed = write_flow(tmp_path, BY_PATH_FIXED, "fixed")
    args = ["restore", "--status", "ENDED_ERROR", "--flow", "bypath", "--script", fixed]
    args += ["--to", "latest-compatible"]

    def table(result: Result) -> dict[str, str]:
        rows = [line.split() for line in result.output.splitlines()[1:-1]]
        return {row[0]: row[1] for row in rows}

    dry = invoke(*args, "--dry-run")
    assert dry.exit_code == 1, dry.output
    assert table(dry) == {h.id: "would" if h.id in fits else "skipped" for h in handles}
    assert "would restore 6 of 10 executions; skipped 4" in dry.output
    assert {h.id: stored_rows(client, h.id) for h in [*handles, other]} == before
    assert (api.count("/items"), api.count("/old/items")) == (7, 4)

    done = invoke(*args)
    assert done.exit_code == 1, done.output
    assert table(done) == {h.id: "restored" if h.id in fits else "skipped" for h in handles}
    assert "differs from the journal at savepoint #1" in done.output
    for handle in handles:
        record = handle.wait(30).record()
        if handle.id in fits:
            assert record.status is Status.ENDED_SUCCESS, record.error
            assert record.outputs == {"count": 2}
        else:
            assert stored_rows(client, handle.id) == before[handle.id]
    assert stored_rows(client, other.id) == before[other.id]
    assert (api.count("/items"), api.count("/old/items"), api.count("/v2/items")) == (7, 4, 0)


def test_a_single_restore_refuses_the_options_of_a_bulk_one(
    api: CountingApi, client: Client, tmp_path: Path
) -> None:
    handle = failed(tmp_path)
    before = stored_rows(client, handle.id)
    careless = invoke("restore", handle.id, "fetched", "--by", "name", "--dry-run")
    assert careless.exit_code == 2 and "--dry-run select many" in careless.output
    nothing = invoke("restore", "--script", write_flow(tmp_path, FIXED, "fixed"))
    assert nothing.exit_code == 2 and "--status/--flow" in nothing.output
    assert stored_rows(client, handle.id) == before


def test_latest_compatible_restores_to_the_savepoint_before_the_first_difference(
    api: CountingApi, client: Client, tmp_path: Path
) -> None:
    handle = failed(tmp_path)
    renamed = FIXED.replace("save_dump('fetched')", "save_dump('counted')")
    (row,) = client.runtime.restore_many([handle.record()], renamed, "latest-compatible")
    assert row.restored and row.savepoint is not None and row.savepoint.seq == 2, row
    assert "differs from the journal at savepoint #3" in row.reason
    record = handle.wait(30).record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert api.count("/items") == 1
    assert [sp.name for sp in handle.savepoints() if sp.name] == ["fetched", "counted"]

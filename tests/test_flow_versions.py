"""Registered flows keep their versions: `flowrt flow versions`, `--flow-version NAME@N`.

Reuses the failing/fixed flows of test_fix_script: the fix is registered as a new version of
the flow and an errored execution is checked and restored under that version by number.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import run_flow, write_flow
from test_fix_script import FAILING, FIXED, CountingApi, api, failed, invoke  # noqa: F401

import flowrt
from flowrt.client import Client
from flowrt.errors import FlowNotFoundError, TamperedFlowError
from flowrt.flow_versions import FLOW_VERSION
from flowrt.script import script_hash
from flowrt.status import Status


def register(tmp_path: Path, source: str, file: str) -> str:
    saved = invoke("flow", "set", "count", write_flow(tmp_path, source, file))
    assert saved.exit_code == 0, saved.output
    return saved.output


def test_each_distinct_source_is_kept_once_numbered_and_listed(tmp_path: Path) -> None:
    assert "(version 1)" in register(tmp_path, FAILING, "a")
    assert "(version 1)" in register(tmp_path, FAILING, "a")  # the same source: no new one
    assert "(version 2)" in register(tmp_path, FIXED, "b")
    assert "(version 1)" in register(tmp_path, FAILING, "a")  # back to the first: its number
    listed = invoke("flow", "versions", "count")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("count@1") and f"script={script_hash(FAILING)}" in lines[0]
    assert lines[0].endswith("(registered now)")
    assert lines[1].startswith("count@2") and f"script={script_hash(FIXED)}" in lines[1]
    assert not lines[1].endswith("(registered now)")
    missing = invoke("flow", "versions", "nobody")
    assert missing.exit_code != 0 and "no flow 'nobody'" in str(missing.exception)


def test_an_errored_execution_is_checked_and_restored_under_a_version_by_number(
    api: CountingApi,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    handle = failed(tmp_path)
    register(tmp_path, FAILING, "a")
    register(tmp_path, FIXED, "b")
    register(tmp_path, FAILING, "a")  # the registered flow is the failing one again

    bad = invoke("check", handle.id, "--flow-version", "count@1", "--to", "fetched", "--by", "name")
    assert bad.exit_code == 0, bad.output  # the failing source replays its own journal
    checked = invoke("check", handle.id, "--flow-version", "count@2")
    assert checked.exit_code == 0, checked.output
    restored = invoke("restore", handle.id, "fetched", "--by", "name", "--flow-version", "count@2")
    assert restored.exit_code == 0, restored.output
    record = handle.wait(30).record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.source == FIXED and api.count("/items") == 1

    old, new = script_hash(FAILING), script_hash(FIXED)
    shown = invoke("show", handle.id)
    assert f"#1-#3 under {old} (flow count version 1, as registered now)" in shown.output
    assert f"#4-#5 under {new} (flow count version 2)" in shown.output


def test_a_wrong_flow_version_is_a_clear_error_and_changes_nothing(
    api: CountingApi,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    handle = failed(tmp_path)
    register(tmp_path, FIXED, "b")
    version = handle.record().version
    for ref in ("count@9", "count", "nobody@1", "count@one", "@1"):
        refused = invoke("restore", handle.id, "fetched", "--by", "name", "--flow-version", ref)
        assert refused.exit_code != 0
        assert isinstance(refused.exception, FlowNotFoundError), (ref, refused.output)
    both = invoke("check", handle.id, "--script", "x.py", "--flow-version", "count@1")
    assert both.exit_code == 2 and "not both" in both.output
    neither = invoke("upgrade", handle.id)
    assert neither.exit_code == 2 and "--flow-version NAME@N" in neither.output
    assert handle.record().version == version and handle.status is Status.ENDED_ERROR


def test_a_version_edited_in_the_database_is_refused(client: Client, tmp_path: Path) -> None:
    register(tmp_path, FAILING, "a")
    register(tmp_path, FIXED, "b")
    with client.store.engine.begin() as conn:
        rows = conn.execute(sa.text("SELECT name FROM named WHERE kind = :k"), {"k": FLOW_VERSION})
        first = sorted(row.name for row in rows)[0]
        conn.execute(
            sa.text("UPDATE named SET value = :v WHERE kind = :k AND name = :n"),
            {"v": '{"flow": "count", "source": "evil"}', "k": FLOW_VERSION, "n": first},
        )
    with pytest.raises(TamperedFlowError):
        client.flow_versions("count")
    with pytest.raises(TamperedFlowError):
        client.flow_version("count@2")


SAVES = """\
def handler(system, this):
    system.flow('saved').save(script=this.get('input_value')['script'])
    return this.success('saved')
"""


def test_a_flow_saved_by_a_flow_is_versioned_too(client: Client, tmp_path: Path) -> None:
    for script in (FAILING, FIXED, FIXED):
        handle = run_flow(client, tmp_path, SAVES, "saves", {"script": script})
        assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    versions = client.flow_versions("saved")
    assert [(v.number, v.source) for v in versions] == [(1, FAILING), (2, FIXED)]
    assert client.flow_version("saved@1") == FAILING
    assert flowrt.default_client().flow_version("saved@2") == FIXED

"""Audit of issue 12 (fix the script, keep the execution): what a careless or hostile operator
and bad data do to `flowrt check`, `restore --script`, bulk restores and `--flow-version`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from conftest import write_flow
from test_cli import flowrt_process
from test_fix_script import (  # noqa: F401
    FAILING,
    FIXED,
    CountingApi,
    api,
    failed,
    invoke,
    stored_rows,
)

import flowrt
from flowrt.client import Client
from flowrt.errors import FlowNotFoundError
from flowrt.status import Status

# The token reaches the call through the inputs, and a connect() call is given it first: a
# later call that differs and holds it must show it masked, as replay's own error does.
TOKEN = "Bearer tok-9f8e7d6c"
GIVES_A_TOKEN = """\
import flow_api


def handler(system, this, inputs):
    token = inputs['token']
    this.connect('api', path='/items', headers={'Authorization': token})
    this.save_dump('fetched')
    return 1 // 0
"""


def test_a_check_report_masks_a_credential_an_earlier_call_was_given(
    api: CountingApi,  # noqa: F811 - the fixture imported above
    client: Client,
    tmp_path: Path,
) -> None:
    handle = flowrt.start(write_flow(tmp_path, GIVES_A_TOKEN, "token"), {"token": TOKEN})
    assert handle.wait(30).status is Status.ENDED_ERROR
    leaky = GIVES_A_TOKEN.replace("save_dump('fetched')", "save_dump('at ' + token)")
    checked = invoke("check", handle.id, "--script", write_flow(tmp_path, leaky, "leaky"))
    assert checked.exit_code == 1, checked.output
    assert "calls save_dump('at ***')" in checked.output
    assert "tok-9f8e7d6c" not in checked.output
    report = flowrt.check(handle.id, leaky)
    assert "tok-9f8e7d6c" not in f"{report.found} {report.describe()}"


def test_a_flow_version_that_is_not_a_plain_number_is_a_clear_error(
    client: Client, tmp_path: Path
) -> None:
    saved = invoke("flow", "set", "count", write_flow(tmp_path, FIXED, "count"))
    assert saved.exit_code == 0, saved.output
    for ref in ("count@²", "count@-1", "count@ 1", "count@0", "@1", "x" * 300 + "@1"):
        with pytest.raises(FlowNotFoundError) as caught:
            client.flow_version(ref)
        assert "@1@1" not in str(caught.value), ref  # the example it gives is NAME@1
    with pytest.raises(FlowNotFoundError, match="say count@1"):
        client.flow_version("count@x")


OTHER_FLOW = """\
import flow_api


def handler(system, this):
    this.connect('api', path='/items').get('output_value')
    this.save_dump('the other flow')
    return 1 // 0
"""


def test_a_bulk_restore_never_moves_another_flows_or_a_running_execution_onto_the_script(
    api: CountingApi,  # noqa: F811 - the fixture imported above
    client: Client,
    tmp_path: Path,
) -> None:
    # The other flow's first call is the same: latest-compatible would restore it to #1
    # under count's fix; and without --status, a running execution of count would be rewound.
    other = flowrt.start(write_flow(tmp_path, OTHER_FLOW, "other")).wait(30)
    mine = failed(tmp_path)
    before = {h.id: stored_rows(client, h.id) for h in (other, mine)}
    fixed = write_flow(tmp_path, FIXED, "fixed")
    for selection in (["--status", "ENDED_ERROR"], ["--flow", "count"]):
        careless = invoke("restore", *selection, "--script", fixed, "--to", "latest-compatible")
        assert careless.exit_code == 2, careless.output
        assert "needs both --status" in careless.output
    assert {h.id: stored_rows(client, h.id) for h in (other, mine)} == before


def test_a_bulk_restore_finds_the_flows_executions_behind_newer_ones_of_other_flows(
    api: CountingApi,  # noqa: F811 - the fixture imported above
    client: Client,
    tmp_path: Path,
) -> None:
    mine = [failed(tmp_path) for _ in range(2)]
    for name in ("other1", "other2"):  # newer errored executions of another flow
        assert flowrt.start(write_flow(tmp_path, OTHER_FLOW, name)).wait(30).status.ended
    args = ["restore", "--status", "ENDED_ERROR", "--flow", "count", "--limit", "2"]
    fixed = write_flow(tmp_path, FIXED, "fixed")
    dry = invoke(*args, "--script", fixed, "--to", "fetched", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would restore 2 of 2 executions" in dry.output
    assert all(h.id in dry.output for h in mine)


EXITS_AT_IMPORT = """\
import os

os._exit(7)


def handler(system, this):
    pass
"""


@pytest.mark.xfail(
    strict=True,
    reason="the dry run runs the new script in the checking process: os._exit kills it",
)
def test_a_script_calling_os_exit_at_import_is_reported_and_the_check_survives(
    api: CountingApi,  # noqa: F811 - the fixture imported above
    flowrt_env: Any,
    tmp_path: Path,
) -> None:
    handle = failed(tmp_path)
    env = {k: v for k, v in os.environ.items() if k.startswith("FLOWRT_")}
    script = write_flow(tmp_path, EXITS_AT_IMPORT, "exits")
    checked = flowrt_process(env, "check", handle.id, "--script", script)
    assert checked.returncode == 1, (checked.returncode, checked.stdout, checked.stderr)
    assert "incompatible" in checked.stdout

"""`flowrt upgrade`: a running, waiting or paused execution moved onto a corrected script."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import WorkerProcesses, line_of, wait_until, write_flow

import flowrt
from flowrt.cli import cli
from flowrt.client import Client
from flowrt.errors import ExecutionChangedError, IncompatibleScriptError
from flowrt.script import script_hash
from flowrt.status import RESTORABLE, Status
from flowrt.upgrade import UPGRADABLE

SLEEPER = """\
import flow_api


def handler(system, this):
    this.save_dump('before the nap')
    this.sleep(NAP)
    this.save(output_value={'version': 1})
    return this.success('woke')
"""

# The fix: lines shifted, a different result after the sleep, a new call after it.
UPGRADED = "# version 2\n" + SLEEPER.replace(
    "    this.save(output_value={'version': 1})\n",
    "    this.log('woke under version 2')\n    this.save(output_value={'version': 2})\n",
)

# Sleeps for a different time: the call the execution waits in differs.
INCOMPATIBLE = SLEEPER.replace("this.sleep(NAP)", "this.sleep(NAP + 1)")


def nap(source: str, seconds: int) -> str:
    return source.replace("NAP", str(seconds))


@pytest.mark.postgres
def test_an_upgrade_of_a_sleeping_execution_takes_effect_when_it_wakes_on_another_worker(
    production: tuple[Client, WorkerProcesses], tmp_path: Path
) -> None:
    client, workers = production
    first = workers.start("first")
    handle = client.start(write_flow(tmp_path, nap(SLEEPER, 5), "nap"))
    wait_until(lambda: handle.status is Status.WAITING, 60, "the execution to sleep")

    upgraded = CliRunner().invoke(
        cli, ["upgrade", handle.id, "--script", write_flow(tmp_path, nap(UPGRADED, 5), "v2")]
    )
    assert upgraded.exit_code == 0, upgraded.output
    assert "it stays WAITING" in upgraded.output
    first.terminate()
    first.wait(60)
    assert handle.status is Status.WAITING  # nothing woke it on the way

    workers.start("second")
    workers.start_beat()
    record = wait_until(lambda: (r := handle.record()).status.ended and r, 90, "the wake-up")
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs == {"version": 2}
    assert [log.message for log in handle.logs()] == ["woke under version 2"]
    scripts = [sp.script for sp in sorted(handle.savepoints(), key=lambda sp: sp.seq)]
    old, new = script_hash(nap(SLEEPER, 5)), script_hash(nap(UPGRADED, 5))
    assert scripts == [old, old, new, new, new]


PAUSER = """\
import flow_api


def handler(system, this):
    this.pause()
    this.save(output_value={'stage': 'resumed'})
    return this.success('version 1')
"""

PAUSER_FIXED = PAUSER.replace("this.success('version 1')", "this.success('version 2')")


def test_an_upgrade_of_a_paused_execution_runs_the_new_script_on_resume(
    client: Client, tmp_path: Path
) -> None:
    handle = flowrt.start(write_flow(tmp_path, PAUSER, "pauser"))
    wait_until(lambda: handle.status is Status.PAUSED, 30, "the execution to pause itself")
    handle.upgrade(PAUSER_FIXED)
    record = handle.record()
    assert record.status is Status.PAUSED and record.source == PAUSER_FIXED
    assert (record.worker, record.lease_until) == (None, None)

    handle.resume().wait(30)
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert handle.record().message == "version 2"


def test_an_incompatible_upgrade_is_refused_and_changes_nothing(
    client: Client, tmp_path: Path
) -> None:
    handle = flowrt.start(write_flow(tmp_path, nap(SLEEPER, 3600), "nap"))
    wait_until(lambda: handle.status is Status.WAITING, 30, "the execution to sleep")
    before = handle.record()
    changed = nap(INCOMPATIBLE, 3600)
    with pytest.raises(IncompatibleScriptError) as refused:
        handle.upgrade(changed)
    assert f"at line {line_of(changed, 'this.sleep(')}" in str(refused.value)
    assert handle.record() == before


def test_an_upgrade_drops_the_live_copy_the_same_worker_holds_through_a_short_sleep(
    client: Client, tmp_path: Path
) -> None:
    handle = flowrt.start(write_flow(tmp_path, nap(SLEEPER, 2), "nap"))
    wait_until(lambda: handle.status is Status.WAITING, 30, "the execution to sleep")
    assert handle.record().worker is not None  # a short sleep stays loaded in its worker
    handle.upgrade(nap(UPGRADED, 2)).wait(30)
    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs == {"version": 2}


def test_a_source_move_fenced_on_an_older_version_is_refused_and_changes_nothing(
    client: Client, tmp_path: Path
) -> None:
    handle = flowrt.start(write_flow(tmp_path, PAUSER, "pauser"))
    wait_until(lambda: handle.status is Status.PAUSED, 30, "the execution to pause itself")
    record = handle.record()
    assert record.head_id is not None
    stale, changes = record.version - 1, {"source": PAUSER_FIXED}
    with pytest.raises(ExecutionChangedError):
        client.store.move_source(handle.id, stale, UPGRADABLE, changes)
    with pytest.raises(ExecutionChangedError):
        client.store.restore(handle.id, record.head_id, RESTORABLE, version=stale, changes=changes)
    assert handle.record() == record

"""Restores from outside and from the flow: archived and paused executions, restore loops and
what `flowrt restore --wait` exits with."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import wait_until, write_flow

import flowrt
from flowrt.cli import cli
from flowrt.errors import ArchivedExecutionError
from flowrt.status import Status


def flow(tmp_path: Path, body: str, name: str = "flow") -> str:
    return write_flow(tmp_path, "import flow_api\n\n" + textwrap.dedent(body), name)


FAILS = """
    def handler(system, this):
        this.save_dump('here')
        this.error('always fails')
"""


def test_a_restore_of_an_archived_execution_says_it_was_archived(client, tmp_path):
    handle = flowrt.start(flow(tmp_path, FAILS)).wait(30)
    [point, _] = handle.savepoints()
    handle.archive()
    for ref, by in ((point.id, "id"), ("here", "name")):
        with pytest.raises(ArchivedExecutionError) as caught:
            handle.restore(ref, by)
        assert f"execution {handle.id} was archived at" in str(caught.value)
        assert "its savepoints were deleted" in str(caught.value)
    assert handle.record().status is Status.ENDED_ERROR


def test_restore_wait_exits_as_run_does_one_unless_the_execution_ends_in_success(client, tmp_path):
    handle = flowrt.start(flow(tmp_path, FAILS)).wait(30)
    result = CliRunner().invoke(cli, ["restore", handle.id, "here", "--by", "name", "--wait"])
    assert result.exit_code == 1, result.output
    assert "status   ENDED_ERROR" in result.stdout

    fixed = flowrt.start(
        flow(
            tmp_path,
            """
        def handler(system, this):
            point = this.save_dump('here')
            if point.restored == 0:
                this.error('fails until restored')
            """,
            "fixed",
        )
    ).wait(30)
    assert fixed.status is Status.ENDED_ERROR
    result = CliRunner().invoke(cli, ["restore", fixed.id, "here", "--by", "name", "--wait"])
    assert result.exit_code == 0, result.output
    assert "status   ENDED_SUCCESS" in result.stdout


def test_restores_from_outside_do_not_count_toward_a_restore_loop(flowrt_env, tmp_path):
    flowrt_env(FLOWRT_MAX_RESTORES="3")
    handle = flowrt.start(
        flow(
            tmp_path,
            """
        def handler(system, this):
            point = this.save_dump('point')
            if 4 <= point.restored < 6:  # after four restores from outside, two of its own
                this.load_dump('point', by='name')
            this.error(f'stopped at restore {point.restored}')
            """,
        )
    ).wait(30)
    for _ in range(4):
        handle.restore("point", by="name").wait(30)
    record = handle.record()
    assert record.status is Status.ENDED_ERROR
    assert record.message == "stopped at restore 6", record.error


def test_a_restore_loop_counts_again_once_the_flow_got_further(flowrt_env, tmp_path):
    flowrt_env(FLOWRT_MAX_RESTORES="3")
    handle = flowrt.start(
        flow(
            tmp_path,
            """
        def handler(system, this):
            point = this.save_dump('point')
            for call in range(point.restored):  # each round gets one call further
                this.log('round', point.restored, 'call', call)
            if point.restored < 6:
                this.load_dump('point', by='name')
            this.success('six rounds')
            """,
        )
    ).wait(30)
    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert handle.savepoints()[0].restored == 6


def test_a_paused_execution_restored_stays_paused_there_until_it_is_resumed(client, tmp_path):
    handle = flowrt.start(
        flow(
            tmp_path,
            """
        def handler(system, this):
            point = this.save_dump('point')
            this.save(output_value={'restored': point.restored})
            this.pause()
            this.success('resumed')
            """,
        )
    )
    wait_until(lambda: handle.status is Status.PAUSED, 30, "the flow to pause itself")
    assert handle.outputs == {"restored": 0}

    handle.restore("point", by="name")
    record = handle.record()
    assert record.status is Status.PAUSED and record.worker is None
    point = handle.savepoints()[0]
    assert record.head_id == point.id and point.restored == 1
    assert handle.outputs == {"restored": 0}  # nothing ran
    # The command line says so, and does not wait for an end that cannot come.
    result = CliRunner().invoke(cli, ["restore", handle.id, "point", "--by", "name", "--wait"])
    assert result.exit_code == 0, result.output
    assert "it stays PAUSED there until `flowrt resume" in result.stdout
    assert handle.status is Status.PAUSED and handle.savepoints()[0].restored == 2

    handle.resume()
    # The restored save_dump returns again, and the flow pauses itself again after it.
    wait_until(lambda: handle.outputs == {"restored": 2}, 30, "the restored run")
    wait_until(lambda: handle.status is Status.PAUSED, 30, "the flow to pause itself again")
    handle.resume().wait(30)
    assert handle.status is Status.ENDED_SUCCESS and handle.outputs == {"restored": 2}

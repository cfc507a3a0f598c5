"""Pause, resume and cancel: from inside a flow, from the Python handle and from the CLI."""

from __future__ import annotations

import textwrap
import time

import pytest
from click.testing import CliRunner
from conftest import wait_until, write_flow

from flowrt.cli import cli
from flowrt.errors import InvalidStateError
from flowrt.status import Status

LOOP = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        for i in range(20):
            this.log('step', i)
            this.sleep(0.05)
        this.save(output_value={'done': 20})
""")

PARENT = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        a = this.flow('child', inputs={'sleep': 3600}, wait=False)
        b = this.flow('child', inputs={'sleep': 3600}, wait=False)
        this.wait_for(a, b)
        this.save(output_value={'reached': True})
""")

CHILD = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        this.sleep(this.get('input_value')['sleep'])
""")


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def _savepoint_count(handle) -> int:
    return len(handle.savepoints())


def test_an_execution_paused_from_its_handle_stores_nothing_until_it_is_resumed(client, tmp_path):
    handle = client.start(write_flow(tmp_path, LOOP))
    wait_until(lambda: _savepoint_count(handle) >= 6, 30, "a few steps")
    handle.pause()
    assert handle.status is Status.PAUSED
    paused_at = _savepoint_count(handle)
    time.sleep(0.5)  # deliberate: a paused execution must make no progress meanwhile
    assert _savepoint_count(handle) == paused_at and handle.status is Status.PAUSED

    handle.resume().wait(30)
    assert handle.status is Status.ENDED_SUCCESS and handle.outputs == {"done": 20}
    # A step under way when it paused was not stored, so each line is logged exactly once.
    assert [log.message for log in handle.logs()] == [f"step {i}" for i in range(20)]


def test_this_pause_stops_the_flow_before_its_next_call_until_flowrt_resume(client, tmp_path):
    source = textwrap.dedent("""
        import flow_api

        def handler(system, this):
            this.save(output_value={'phase': 'before'})
            this.pause()
            this.save(output_value={'phase': 'after'})
    """)
    handle = client.start(write_flow(tmp_path, source))
    wait_until(lambda: handle.status is Status.PAUSED, 30, "the flow to pause itself")
    assert handle.outputs == {"phase": "before"} and handle.record().worker is None

    result = invoke("resume", handle.id)
    assert result.exit_code == 0, result.output
    assert f"resumed {handle.id}" in result.output and "ENDED_SUCCESS" in result.output
    assert handle.outputs == {"phase": "after"}


def test_flowrt_pause_and_cancel_stop_an_execution_from_the_command_line(client, tmp_path):
    handle = client.start(write_flow(tmp_path, LOOP))
    wait_until(lambda: _savepoint_count(handle) >= 3, 30, "a few steps")
    result = invoke("pause", handle.id)
    assert result.exit_code == 0 and f"paused {handle.id}" in result.output
    assert handle.status is Status.PAUSED

    result = invoke("cancel", handle.id)
    assert result.exit_code == 0 and f"cancelled {handle.id}" in result.output
    record = handle.record()
    assert record.status is Status.ENDED_CANCELLED and record.ended_at is not None
    assert record.worker is None and record.wake_at is None


def test_cancelling_a_parent_cancels_the_children_it_waits_for(client, tmp_path):
    client.register_flow("child", write_flow(tmp_path, CHILD, "child"))
    parent = client.start(write_flow(tmp_path, PARENT, "parent"))
    wait_until(
        lambda: len(parent.children()) == 2 and parent.status is Status.WAITING,
        30,
        "the parent to wait for two children",
    )
    result = invoke("cancel", parent.id)
    assert result.exit_code == 0, result.output
    assert f"cancelled {parent.id} and 2 child executions" in result.output
    assert parent.status is Status.ENDED_CANCELLED
    assert [child.status for child in parent.children()] == [Status.ENDED_CANCELLED] * 2
    assert "reached" not in parent.outputs


def test_cancelling_a_child_fails_the_parent_that_waits_for_its_success(client, tmp_path):
    client.register_flow("child", write_flow(tmp_path, CHILD, "child"))
    parent = client.start(write_flow(tmp_path, PARENT, "parent"))
    wait_until(
        lambda: [c.status for c in parent.children()] == [Status.WAITING] * 2,
        30,
        "two sleeping children",
    )
    first, second = parent.children()
    first.cancel()
    parent.wait(30)
    record = parent.record()
    assert record.status is Status.ENDED_ERROR
    assert f"child execution {first.id} (child) ended ENDED_CANCELLED" in record.message
    assert second.status is Status.WAITING  # a sibling is left alone


def test_pause_resume_and_cancel_in_the_wrong_state_are_refused_and_change_nothing(
    client, tmp_path
):
    done = client.start(write_flow(tmp_path, "def handler(system, this):\n    pass\n")).wait(30)
    before = done.record()
    for action in (done.pause, done.resume, done.cancel):
        with pytest.raises(InvalidStateError) as caught:
            action()
        assert "it is ENDED_SUCCESS" in str(caught.value)
    assert done.record() == before

    result = invoke("resume", done.id)
    assert result.exit_code != 0
    assert "cannot resume execution" in str(result.exception)
    assert "only PAUSED executions allow it" in str(result.exception)

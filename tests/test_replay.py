"""Every determinism rule of replay, each broken on purpose: the execution stops, never diverges."""

from __future__ import annotations

import textwrap

from conftest import write_flow

import flowrt
from flowrt.status import Status


def flow_reading(tmp_path, body: str) -> tuple[str, object]:
    """A flow whose behaviour depends on a file read outside the Flow-API (non-deterministic)."""
    switch = tmp_path / "switch.txt"
    source = f"import flow_api\nfrom pathlib import Path\n\nSWITCH = Path({str(switch)!r})\n"
    return write_flow(tmp_path, source + textwrap.dedent(body)), switch


def run_then_replay(tmp_path, body: str, first: str, second: str):
    path, switch = flow_reading(tmp_path, body)
    switch.write_text(first)
    handle = flowrt.start(path).wait(30)
    assert handle.status is Status.ENDED_ERROR, handle.record().error
    switch.write_text(second)
    handle.restore("end", by="name").wait(30)
    return handle.record()


def test_a_replayed_call_with_other_arguments_stops_the_execution(client, tmp_path):
    record = run_then_replay(
        tmp_path,
        """
        def handler(system, this):
            this.get(SWITCH.read_text())
            this.save_dump('end')
            this.error('stop')
    """,
        "input_value",
        "output_value",
    )
    assert record.status is Status.ENDED_ERROR
    assert "replay diverged at line 7" in record.error
    assert "get(…) at line 7" in record.error
    assert "get('output_value') at line 7" in record.error


def test_a_replayed_call_of_another_name_stops_the_execution(client, tmp_path):
    record = run_then_replay(
        tmp_path,
        """
        def handler(system, this):
            if SWITCH.read_text() == 'log':
                this.log('x')
            else:
                this.get('input_value')
            this.save_dump('end')
            this.error('stop')
    """,
        "log",
        "get",
    )
    assert "replay diverged at line 10" in record.error
    assert "the journal recorded log(…) at line 8" in record.error


def test_a_replay_that_ends_before_the_journal_does_stops_the_execution(client, tmp_path):
    record = run_then_replay(
        tmp_path,
        """
        def handler(system, this):
            if SWITCH.read_text() == 'long':
                this.log('only on the first run')
            this.save_dump('end')
            this.error('stop')
    """,
        "long",
        "short",
    )
    # The replay now reaches save_dump where the journal has log: it must not skip the row.
    assert record.status is Status.ENDED_ERROR
    assert "replay diverged at line 9" in record.error
    assert "log(…) at line 8" in record.error
    assert "the flow now calls save_dump('end') at line 9" in record.error


def test_a_flow_that_returns_before_reaching_its_head_stops_the_execution(client, tmp_path):
    record = run_then_replay(
        tmp_path,
        """
        def handler(system, this):
            this.log('one')
            if SWITCH.read_text() == 'stop-early':
                return
            this.save_dump('end')
            this.error('stop')
    """,
        "go",
        "stop-early",
    )
    assert record.status is Status.ENDED_ERROR
    assert "replay diverged at line 10 (savepoint #2)" in record.error
    assert "recorded save_dump(…) at line 10" in record.error
    assert "but the flow now returns from its handler" in record.error

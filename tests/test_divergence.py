"""Replay never silently differs: equal values replay alike, a divergence cannot be swallowed."""

from __future__ import annotations

import textwrap

from conftest import line_of, write_flow

import flowrt
from flowrt.calls import digest
from flowrt.status import Status


def restore_and_replay(tmp_path, source: str, first: str, second: str):
    """Run the flow with SWITCH reading `first`, then restore it to 'end' reading `second`."""
    switch = tmp_path / "switch.txt"
    header = f"import flow_api\nfrom pathlib import Path\n\nSWITCH = Path({str(switch)!r})\n"
    path = write_flow(tmp_path, header + textwrap.dedent(source))
    switch.write_text(first)
    handle = flowrt.start(path).wait(30)
    assert handle.status is Status.ENDED_ERROR, handle.record().error
    switch.write_text(second)
    handle.restore("end", by="name").wait(30)
    return handle.record(), header + textwrap.dedent(source)


SAME_VALUES = """
    import flow_api


    def handler(system, this):
        label = 'checkpoint'
        point = this.save_dump(label)
        # The same string twice in one argument: pickle writes it once, then refers back.
        this.save(output_value={'label': label, 'name': point.name, 'both': [label, label]})
        again = this.save_dump('again')
        if again.restored == 0:
            this.load_dump(again.id)
        this.success('replayed')
"""


def test_a_replay_with_equal_values_held_by_other_objects_does_not_diverge(client, tmp_path):
    handle = flowrt.start(write_flow(tmp_path, textwrap.dedent(SAME_VALUES))).wait(30)
    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert handle.outputs == {
        "label": "checkpoint",
        "name": "checkpoint",
        "both": ["checkpoint", "checkpoint"],
    }


class Point:
    def __init__(self, x: int) -> None:
        self.x = x


def test_a_digest_depends_on_values_only_not_on_shared_objects_or_addresses():
    shared = ["a"]
    assert digest("c", ([shared, shared],), {}) == digest("c", ([["a"], ["a"]],), {})
    label = "x" * 40
    assert digest("c", (label, label), {}) == digest("c", ("x" * 40, "".join(["x"] * 40)), {})
    assert digest("c", (Point(1),), {}) == digest("c", (Point(1),), {})
    assert digest("c", (Point(1),), {}) != digest("c", (Point(2),), {})
    assert digest("c", ({"b", "a"}, Point(3)), {}) == digest("c", ({"a", "b"}, Point(3)), {})
    cycle: list = [1]
    cycle.append(cycle)
    other: list = [1]
    other.append(other)
    assert digest("c", (cycle,), {}) == digest("c", (other,), {})


LOGS_WITH_ADDRESSES = """
    import flow_api


    class Thing:
        pass


    def handler(system, this):
        thing = Thing()
        this.log('made', thing, {'red', 'green', 'blue', 'cyan', 'teal', 'pink'}, object())
        again = this.save_dump('again')
        if again.restored == 0:
            this.load_dump(again.id)
        this.success('replayed')
"""


def test_a_log_line_with_an_address_or_a_set_replays_without_diverging(client, tmp_path):
    handle = flowrt.start(write_flow(tmp_path, textwrap.dedent(LOGS_WITH_ADDRESSES))).wait(30)
    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert len(handle.logs()) == 1 and "<flow:flow.Thing object at 0x" in handle.logs()[0].message


SWALLOWED_BY_BARE_EXCEPT = """
    def handler(system, this):
        try:
            this.get(SWITCH.read_text())  # diverges
        except:
            pass
        this.save_dump('end')
        this.error('stop')
"""

SWALLOWED_BY_BASE_EXCEPTION = """
    def handler(system, this):
        while True:
            try:
                this.get(SWITCH.read_text())  # diverges
                break
            except BaseException as error:
                this.log('caught', error)
        this.save_dump('end')
        this.error('stop')
"""

SWALLOWED_BY_A_LIBRARY = """
    import contextlib


    def handler(system, this):
        with contextlib.suppress(BaseException):
            this.get(SWITCH.read_text())  # diverges
        this.save_dump('end')
        this.error('stop')
"""


def test_a_divergence_swallowed_by_a_bare_except_still_stops_the_execution(client, tmp_path):
    record, source = restore_and_replay(
        tmp_path, SWALLOWED_BY_BARE_EXCEPT, "input_value", "output_value"
    )
    assert record.status is Status.ENDED_ERROR
    assert f"replay diverged at line {line_of(source, '# diverges')}" in record.error


def test_a_divergence_caught_as_base_exception_in_a_loop_still_stops_the_execution(
    client, tmp_path
):
    record, source = restore_and_replay(
        tmp_path, SWALLOWED_BY_BASE_EXCEPTION, "input_value", "output_value"
    )
    assert record.status is Status.ENDED_ERROR
    assert f"replay diverged at line {line_of(source, '# diverges')}" in record.error
    assert [log.message for log in flowrt.default_client().get(record.id).logs()] == []


def test_a_divergence_swallowed_by_a_library_still_stops_the_execution(client, tmp_path):
    record, source = restore_and_replay(
        tmp_path, SWALLOWED_BY_A_LIBRARY, "input_value", "output_value"
    )
    assert record.status is Status.ENDED_ERROR
    assert f"replay diverged at line {line_of(source, '# diverges')}" in record.error

"""Savepoints end to end on the embedded default: created per call, restored, named, guarded."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import wait_until, write_flow

import flowrt
from flowrt.status import Status
from tasks import runtime_of


def flow(tmp_path: Path, body: str, name: str = "flow") -> str:
    return write_flow(tmp_path, "import flow_api\n\n" + textwrap.dedent(body), name)


def worker_runtime(client: flowrt.Client) -> flowrt.runtime.Runtime:  # type: ignore[name-defined]
    client.ensure_worker()
    assert client._worker is not None
    return runtime_of(client.app, client._worker.hostname)


def test_every_flow_api_call_creates_a_savepoint_with_call_line_and_variables(client, tmp_path):
    path = flow(
        tmp_path,
        """
        def handler(system, this):
            greeting = 'hello'
            this.log(greeting)
            numbers = [1, 2, 3]
            this.get('input_value')
            this.save_dump('named')
            this.success('done')
    """,
    )
    handle = flowrt.start(path).wait(30)
    assert handle.status is Status.ENDED_SUCCESS
    points = handle.savepoints()
    assert [(p.seq, p.call, p.line, p.name) for p in points] == [
        (1, "log", 6, None),
        (2, "get", 8, None),
        (3, "save_dump", 9, "named"),
        (4, "success", 10, None),
    ]
    assert points[0].variables == {"greeting": "'hello'"}
    assert points[1].variables == {"greeting": "'hello'", "numbers": "[1, 2, 3]"}
    assert all(p.created_at.tzinfo is not None for p in points)


def test_a_failing_call_still_has_its_savepoint(client, tmp_path):
    path = flow(
        tmp_path,
        """
        def handler(system, this):
            this.log('before')
            this.connect('nowhere', fetch='SELECT 1')
    """,
    )
    handle = flowrt.start(path).wait(30)
    assert handle.status is Status.ENDED_ERROR
    assert [(p.call, p.line) for p in handle.savepoints()] == [("log", 5), ("connect", 6)]


RESTORE_COUNTER = """
    def handler(system, this):
        local = 0
        point = this.save_dump('point')
        local += 1
        counter = system.setting('counter')
        seen = counter.get('value') if counter.exists() else 0
        counter.save(value=seen + 1)
        if point.restored < 2:
            this.load_dump('point', by='name')
        this.save(output_value={'local': local, 'restored': point.restored, 'seen': seen + 1})
        this.success('done')
"""


def test_restore_brings_variables_back_but_leaves_settings_as_they_are(client, tmp_path):
    handle = flowrt.start(flow(tmp_path, RESTORE_COUNTER)).wait(30)
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    # The local variable is back at its value of the savepoint each time...
    assert handle.outputs == {"local": 1, "restored": 2, "seen": 3}
    # ...while the setting, outside the execution, kept counting across both restores.
    assert client.get_setting("counter") == 3
    named = [p for p in handle.savepoints() if p.name == "point"]
    assert len(named) == 1 and named[0].restored == 2


def test_load_dump_by_id_returns_again_from_save_dump(client, tmp_path):
    path = flow(
        tmp_path,
        """
        def handler(system, this):
            point = this.save_dump()
            passes = system.setting('passes')
            n = passes.get() if passes.exists() else 0
            passes.save(value=n + 1)
            if point.restored == 0:
                this.load_dump(point.id)
            this.save(output_value={'id': point.id, 'restored': point.restored, 'n': n})
            this.success('ok')
    """,
    )
    handle = flowrt.start(path).wait(30)
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    first = handle.savepoints()[0]
    assert handle.outputs == {"id": first.id, "restored": 1, "n": 1}


def test_names_may_repeat_and_the_newest_on_the_timeline_wins(client, tmp_path):
    path = flow(
        tmp_path,
        """
        def handler(system, this):
            marks = []
            first = this.save_dump('spot')
            marks.append('a')
            second = this.save_dump('spot')
            marks.append('b')
            if second.restored == 0:
                this.load_dump('spot', by='name')
            this.save(output_value={'marks': marks, 'first': first.restored,
                                    'second': second.restored})
            this.success('ok')
    """,
    )
    handle = flowrt.start(path).wait(30)
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert handle.outputs == {"marks": ["a", "b"], "first": 0, "second": 1}


def test_load_dump_of_an_unknown_savepoint_is_a_clear_error_the_flow_can_catch(client, tmp_path):
    path = flow(
        tmp_path,
        """
        import flowrt.errors

        def handler(system, this):
            try:
                this.load_dump('no-such-name', by='name')
            except flowrt.errors.SavepointNotFoundError as error:
                this.save(output_value={'caught': str(error)})
            this.load_dump('3f0c1b9e-0000-4000-8000-000000000000')
    """,
    )
    handle = flowrt.start(path).wait(30)
    assert handle.status is Status.ENDED_ERROR
    assert "no savepoint with name 'no-such-name'" in handle.outputs["caught"]
    record = handle.record()
    assert "3f0c1b9e-0000-4000-8000-000000000000" in record.error
    assert record.error_line == 11


def test_load_dump_of_another_executions_savepoint_is_refused(client, tmp_path):
    donor = flowrt.start(
        flow(
            tmp_path,
            """
        def handler(system, this):
            point = this.save_dump('mine')
            this.save(output_value={'id': point.id})
            this.success('ok')
    """,
            "donor",
        )
    ).wait(30)
    foreign_id = donor.outputs["id"]
    thief = flowrt.start(
        flow(
            tmp_path,
            """
        def handler(system, this, inputs):
            this.load_dump(inputs['id'])
    """,
            "thief",
        ),
        {"id": foreign_id},
    ).wait(30)
    record = thief.record()
    assert record.status is Status.ENDED_ERROR
    assert f"belongs to execution {donor.id}" in record.error
    assert donor.savepoints()[0].restored == 0


def test_a_restore_loop_is_stopped_with_a_clear_error(flowrt_env, tmp_path):
    flowrt_env(FLOWRT_MAX_RESTORES="3")
    handle = flowrt.start(
        flow(
            tmp_path,
            """
        def handler(system, this):
            this.save_dump('again')
            this.load_dump('again', by='name')
    """,
        )
    ).wait(30)
    record = handle.record()
    assert record.status is Status.ENDED_ERROR
    assert "restore loop" in record.error and "limit is 3" in record.error
    assert handle.savepoints()[0].restored == 3


def test_an_errored_execution_is_restored_from_outside_and_completes(client, tmp_path):
    path = flow(
        tmp_path,
        """
        def handler(system, this):
            attempts = []
            this.save_dump('before-risk')
            attempts.append('try')
            if not system.setting('fixed').exists():
                raise RuntimeError('the remote side is down')
            this.save(output_value={'attempts': attempts})
            this.success('recovered')
    """,
    )
    handle = flowrt.start(path).wait(30)
    record = handle.record()
    assert record.status is Status.ENDED_ERROR
    assert "RuntimeError: the remote side is down" in record.error
    assert record.error_line == 9
    assert len(handle.savepoints()) == 2  # kept for the restore
    client.set_setting("fixed", True)
    handle.restore("before-risk", by="name").wait(30)
    assert handle.status is Status.ENDED_SUCCESS
    assert handle.outputs == {"attempts": ["try"]}
    assert handle.record().message == "recovered"


def test_a_replay_that_diverges_stops_the_execution_naming_line_and_both_calls(client, tmp_path):
    switch = tmp_path / "switch.txt"
    switch.write_text("log")
    path = flow(
        tmp_path,
        f"""
        from pathlib import Path

        def handler(system, this):
            # Reading a file directly, outside the Flow-API, breaks determinism on purpose.
            if Path({str(switch)!r}).read_text() == 'log':
                this.log('first way')
            else:
                this.get('input_value')
            this.save_dump('after')
            this.error('stop here')
    """,
    )
    handle = flowrt.start(path).wait(30)
    assert handle.status is Status.ENDED_ERROR
    switch.write_text("get")
    handle.restore("after", by="name").wait(30)
    record = handle.record()
    assert record.status is Status.ENDED_ERROR
    assert "replay diverged at line 11" in record.error
    assert "log(…) at line 9" in record.error
    assert "get('input_value') at line 11" in record.error


def test_a_step_at_a_stale_version_changes_nothing(client, tmp_path):
    handle = flowrt.start(
        flow(
            tmp_path,
            """
        def handler(system, this):
            for i in range(3):
                this.log(i)
            this.success('ok')
    """,
        )
    ).wait(30)
    before = (handle.record(), handle.savepoints(), handle.logs())
    runtime = worker_runtime(client)
    for version in range(0, before[0].version + 1):
        runtime.step(handle.id, version)  # what a duplicate or late message would do
    assert (handle.record(), handle.savepoints(), handle.logs()) == before


def test_a_live_execution_is_not_replayed_between_steps(client, tmp_path):
    runtime = worker_runtime(client)
    start = dict(runtime.stats)
    handle = flowrt.start(
        flow(
            tmp_path,
            """
        def handler(system, this):
            total = 0
            for i in range(200):
                total += this.get('input_value')['step']
            this.save(output_value={'total': total})
            this.success('ok')
    """,
        ),
        {"step": 2},
    ).wait(60)
    assert handle.outputs == {"total": 400}
    assert runtime.stats["steps"] - start["steps"] == 203  # start, 200 gets, save, success
    assert runtime.stats["loads"] - start["loads"] == 1
    assert runtime.stats["replayed_calls"] - start["replayed_calls"] == 0


def test_a_step_that_finds_no_live_execution_replays_the_journal(client, tmp_path):
    runtime = worker_runtime(client)
    handle = flowrt.start(
        flow(
            tmp_path,
            """
        def handler(system, this):
            seen = []
            for i in range(5):
                seen.append(this.get('input_value')['x'] + i)
            this.sleep(1.5)
            this.save(output_value={'seen': seen})
            this.success('ok')
    """,
        ),
        {"x": 10},
    )
    wait_until(lambda: handle.status is Status.WAITING, 30, "the sleep")
    replayed = runtime.stats["replayed_calls"]
    runtime.live.clear()  # as if the step landed on a worker that never saw this execution
    handle.wait(30)
    assert handle.status is Status.ENDED_SUCCESS
    assert handle.outputs == {"seen": [10, 11, 12, 13, 14]}
    assert runtime.stats["replayed_calls"] - replayed == 5


def test_sleep_waits_without_a_worker_slot_and_then_continues(client, tmp_path):
    handle = flowrt.start(
        flow(
            tmp_path,
            """
        import time

        def handler(system, this):
            this.sleep(1)
            this.sleep_until(time.time() - 5)  # in the past: returns at once
            this.success('woke')
    """,
        )
    )
    wait_until(lambda: handle.status is Status.WAITING, 30, "WAITING")
    assert handle.record().wake_at is not None
    handle.wait(30)
    assert handle.status is Status.ENDED_SUCCESS
    assert handle.record().wake_at is None


def test_outputs_follow_a_restore_back_to_before_they_were_saved(client, tmp_path):
    path = flow(
        tmp_path,
        """
        def handler(system, this):
            this.save(output_value={'stage': 'early'})
            point = this.save_dump('p')
            if point.restored == 0:
                this.save(output_value={'stage': 'late'})
            this.error('look at me')
    """,
    )
    handle = flowrt.start(path).wait(30)
    assert handle.outputs == {"stage": "late"}
    handle.restore("p", by="name").wait(30)
    assert handle.status is Status.ENDED_ERROR
    assert handle.outputs == {"stage": "early"}


def test_archive_deletes_savepoints_and_keeps_status_outputs_and_logs(client, tmp_path):
    handle = flowrt.start(
        flow(
            tmp_path,
            """
        def handler(system, this):
            this.log('kept')
            this.save(output_value={'kept': True})
            this.success('ok')
    """,
        )
    ).wait(30)
    handle.archive()
    assert handle.savepoints() == []
    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS and record.outputs == {"kept": True}
    assert record.archived_at is not None
    assert [line.message for line in handle.logs()] == ["kept"]
    with pytest.raises(flowrt.SavepointNotFoundError):
        handle.restore("anything", by="name")


def test_the_handler_may_take_inputs_as_a_third_parameter(client, tmp_path):
    handle = flowrt.start(
        flow(
            tmp_path,
            """
        def handler(system, this, inputs):
            this.save(output_value={'doubled': inputs['n'] * 2})
            this.success('ok')
    """,
        ),
        {"n": 21},
    ).wait(30)
    assert handle.outputs == {"doubled": 42}


def test_success_and_error_cannot_be_swallowed_by_except_exception(client, tmp_path):
    path = flow(
        tmp_path,
        """
        def handler(system, this):
            try:
                this.success('really done')
            except Exception:
                this.log('swallowed')
            this.log('after')
    """,
    )
    handle = flowrt.start(path).wait(30)
    assert handle.status is Status.ENDED_SUCCESS
    assert handle.record().message == "really done"
    assert handle.logs() == []


def test_a_fault_inside_flowrt_ends_the_execution_visibly_and_a_restore_retries_it(
    client, tmp_path, monkeypatch
):
    from flowrt import perform

    def broken(context, *parts):
        raise RuntimeError("boom inside flowrt")

    monkeypatch.setitem(perform.PERFORMERS, "log", broken)
    handle = flowrt.start(
        flow(
            tmp_path,
            """
        def handler(system, this):
            this.log('hello')
            this.success('ok')
    """,
        )
    ).wait(30)
    record = handle.record()
    assert record.status is Status.ENDED_ERROR
    assert "internal error in flowrt" in record.error and "RuntimeError: boom" in record.error
    monkeypatch.undo()
    handle.restore(handle.savepoints()[0].id).wait(30)
    assert handle.status is Status.ENDED_SUCCESS
    assert [line.message for line in handle.logs()] == ["hello"]

"""Reads of time, randomness and uuids inside a flow are journaled: replay sees the same values."""

from __future__ import annotations

import json
import textwrap

from conftest import wait_until, write_flow

import flowrt
from flowrt.status import Status
from tasks import runtime_of

READING_FLOW = """
    import datetime as dt
    import random
    import time
    import uuid
    from datetime import datetime

    import flow_api

    STARTED = time.time()  # module level: read on every load, replayed like the rest


    def handler(system, this):
        values = {
            'started': STARTED,
            'time': time.time(),
            'now': datetime.now(dt.timezone.utc).isoformat(),
            'today': dt.date.today().isoformat(),
            'random': random.random(),
            'dice': [random.randint(1, 6) for _ in range(5)],
            'choice': random.choice('abcdefgh'),
            'uuid': str(uuid.uuid4()),
            'is_datetime': isinstance(datetime.now(), datetime),
        }
        this.log(json.dumps(values))
        this.sleep(1.5)
        values['after'] = time.time()
        this.save(output_value=values)
        this.success('read')
"""


def test_time_random_and_uuid_read_by_a_flow_replay_as_they_were(client, tmp_path):
    source = "import json\n" + textwrap.dedent(READING_FLOW)
    handle = flowrt.start(write_flow(tmp_path, source))
    wait_until(lambda: handle.status is Status.WAITING, 30, "the sleep")
    client.ensure_worker()
    runtime_of(client.app, client._worker.hostname).live.clear()  # the wake-up replays
    handle.wait(30)
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    logged = json.loads(handle.logs()[0].message)
    outputs = dict(handle.outputs)
    after = outputs.pop("after")
    assert outputs == logged  # replay gave back every value read before the sleep
    assert logged["is_datetime"] is True
    assert after >= logged["time"] + 1.4
    first = handle.savepoints()[0]
    assert first.reads is not None  # stored with the savepoint of the next call


def test_a_restore_reads_again_after_the_restored_savepoint_only(client, tmp_path):
    path = write_flow(
        tmp_path,
        textwrap.dedent("""
        import random

        import flow_api


        def handler(system, this):
            before = random.random()
            point = this.save_dump('p')
            after = random.random()
            if point.restored == 0:  # a setting keeps the first values across the restore
                system.setting('first').save(value={'before': before, 'after': after})
                this.load_dump('p', by='name')
            first = system.setting('first').get()
            this.save(output_value={**first, 'before2': before, 'after2': after})
            this.success('ok')
    """),
    )
    handle = flowrt.start(path).wait(30)
    out = handle.outputs
    assert out["before2"] == out["before"]  # replayed: read before the savepoint
    assert out["after2"] != out["after"]  # read afresh: after the restored savepoint


def test_a_replay_that_reads_differently_stops_the_execution(client, tmp_path):
    switch = tmp_path / "reads.txt"
    switch.write_text("2")
    path = write_flow(
        tmp_path,
        textwrap.dedent(f"""
        import time
        from pathlib import Path

        import flow_api


        def handler(system, this):
            for _ in range(int(Path({str(switch)!r}).read_text())):
                time.time()
            this.save_dump('end')
            this.error('stop')
    """),
    )
    handle = flowrt.start(path).wait(30)
    switch.write_text("3")
    handle.restore("end", by="name").wait(30)
    record = handle.record()
    assert record.status is Status.ENDED_ERROR
    assert "replay diverged at line 10" in record.error
    assert "recorded 2 read(s) of time, time before savepoint #1" in record.error
    assert "reads time (read #3 there)" in record.error

"""Flow-API calls and journaled reads from threads a flow starts are refused, never mixed up."""

from __future__ import annotations

import textwrap

from conftest import write_flow

import flowrt
from flowrt.status import Status

THREADED = """
    import random
    from concurrent.futures import ThreadPoolExecutor

    import flow_api


    def handler(system, this):
        with ThreadPoolExecutor(4) as pool:
            calls = [pool.submit(lambda i=i: system.setting(f'k{i}').get()) for i in range(8)]
            reads = [pool.submit(random.random) for _ in range(2)]
        refused = []
        for future in calls + reads:
            try:
                future.result()
            except flow_api.FlowApiError as error:
                refused.append((type(error).__name__, str(error)))
        mine = [system.setting(f'k{i}').get() for i in range(8)]  # the flow's own thread
        this.save(output_value={'refused': refused, 'mine': mine})
        this.success('done')
"""


def test_flow_api_calls_and_reads_from_threads_the_flow_started_are_refused(client, tmp_path):
    for i in range(8):
        client.set_setting(f"k{i}", i)
    handle = flowrt.start(write_flow(tmp_path, textwrap.dedent(THREADED))).wait(30)
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    refused = handle.outputs["refused"]
    assert [name for name, _ in refused] == ["ForeignThreadError"] * 10
    assert all("not from the flow's own thread" in message for _, message in refused)
    assert "setting.get came from thread" in refused[0][1]
    assert "a read of random came from thread" in refused[-1][1]
    assert handle.outputs["mine"] == list(range(8))
    # Only the flow's own calls were recorded: refused calls change nothing.
    assert [sp.call for sp in handle.savepoints()].count("setting.get") == 8

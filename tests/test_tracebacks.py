"""A failed flow's traceback shows its own source lines, whatever other flows are named."""

from __future__ import annotations

from conftest import wait_until

import flowrt
from flowrt.status import Status

JOB = """import flow_api


def handler(system, this):
    this.pause()  # takes effect before the next call
    this.log('resumed')
    raise {error}('{name} failed')  # the line of {name}
"""


def test_two_flows_named_alike_show_each_its_own_line_in_tracebacks(client, tmp_path):
    handles = {}
    for name, error in (("a", "ValueError"), ("b", "KeyError")):
        (tmp_path / name).mkdir()
        path = tmp_path / name / "job.py"
        path.write_text(JOB.format(error=error, name=name))
        handles[name] = flowrt.start(str(path))
        wait_until(lambda h=handles[name]: h.status is Status.PAUSED, 30, f"{name} to pause")
    for name in ("a", "b"):
        record = handles[name].resume().wait(30).record()
        assert record.status is Status.ENDED_ERROR
        assert f"# the line of {name}" in record.error
        assert f"{name} failed" in record.error
        other = "b" if name == "a" else "a"
        assert f"# the line of {other}" not in record.error

"""A flow that iterates over a set, run by one `flowrt` process and restored by another.

The `flowrt` command pins PYTHONHASHSEED when it is unset, so two such processes replay
alike; two processes given different seeds replay exactly or stop with a divergence error
that names the line, never differently in silence.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import ROOT, base_env, line_of, write_flow

from flowrt.status import Status
from flowrt.storage import open_store

FLOWRT = Path(sys.executable).parent / "flowrt"  # the console script of this virtualenv

OVER_A_SET = """
    import flow_api
    from pathlib import Path

    RUNS = Path({runs!r})
    COLOURS = {{'red', 'green', 'blue', 'cyan', 'teal', 'pink', 'gold', 'grey', 'plum', 'rose'}}


    def handler(system, this):
        seen = []
        for colour in COLOURS:
            seen.append(colour)
            this.save_dump(colour)  # one call per colour, in set order
        this.save(output_value={{'seen': seen}})
        this.save_dump('end')
        if RUNS.exists():
            this.success('replayed')
        RUNS.write_text('ran once')
        this.error('stop')
"""


def flowrt_process(env: dict[str, str], seed: str | None, *args: str) -> str:
    """Run `flowrt ARGS` in a process of its own under `seed` (None: unset); its stdout."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    environ.update(env)
    if seed is not None:
        environ["PYTHONHASHSEED"] = seed
    done = subprocess.run(
        [str(FLOWRT), *args], env=environ, capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    return done.stdout + done.stderr


def run_then_restore_elsewhere(tmp_path: Path, first: str | None, second: str | None):
    """`flowrt run` under seed `first`, then `flowrt restore` under seed `second`."""
    env = base_env(tmp_path / "home")
    source = textwrap.dedent(OVER_A_SET.format(runs=str(tmp_path / "runs.txt")))
    output = flowrt_process(env, first, "run", write_flow(tmp_path, source))
    found = re.search(r"execution ([0-9a-f-]{36})", output)
    assert found and "ENDED_ERROR" in output, output
    store = open_store(env["FLOWRT_DATABASE_URL"])
    try:
        seen = store.get_execution(found.group(1)).outputs["seen"]
        output = flowrt_process(env, second, "restore", found.group(1), "end", "--by", "name")
        assert f"restored {found.group(1)}" in output, output
        return store.get_execution(found.group(1)), seen, source
    finally:
        store.close()


def test_a_set_iterated_by_a_flow_replays_in_another_flowrt_process_without_a_seed_set(
    tmp_path,
):
    record, seen, _ = run_then_restore_elsewhere(tmp_path, None, None)
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs["seen"] == seen


def test_a_set_replayed_under_another_hash_seed_replays_alike_or_stops_naming_the_line(
    tmp_path,
):
    record, seen, source = run_then_restore_elsewhere(tmp_path, "1", "2")
    if record.status is Status.ENDED_SUCCESS:  # the two seeds happened to order it alike
        assert record.outputs["seen"] == seen
    else:
        assert record.status is Status.ENDED_ERROR
        line = line_of(source, "one call per colour")
        assert f"replay diverged at line {line}" in record.error
        assert record.outputs["seen"] == seen  # nothing of the diverged replay was stored

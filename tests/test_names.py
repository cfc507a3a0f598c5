"""Execution names: given at start (`flowrt start --name`, `flowrt.start(name=)`), by a parent
(`this.flow(name=)`) or by the execution itself (`this.save(name=)`), read with `get('name')`,
and shown by `flowrt executions` and `flowrt show`.
"""

from __future__ import annotations

import json
import re
import textwrap

import pytest
from conftest import wait_until, write_flow
from test_cli import invoke

import flowrt
from flowrt.errors import InvalidCallError, UnstorableValueError
from flowrt.status import Status

KID = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        this.save(output_value={'name': this.get('name'), 'flow': this.get('flow_name')})
""")


def _run(client, tmp_path, source: str, name: str = "parent"):
    return client.start(write_flow(tmp_path, textwrap.dedent(source), name)).wait(30)


def test_bad_names_are_refused_at_the_flows_line_and_change_nothing(client, tmp_path):
    client.register_flow("kid", write_flow(tmp_path, KID, "kid"))
    parent = _run(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            errors = {}
            tries = {
                'empty': lambda: this.flow('kid', name=''),
                'long': lambda: this.flow('kid', name='x' * 201),
                'nul': lambda: this.flow('kid', name='a\\x00b'),
                'number': lambda: this.flow('kid', name=5),
                'surrogate': lambda: this.save(name='\\ud800'),
                'save_number': lambda: this.save(name=7),
            }
            for key, attempt in tries.items():
                try:
                    attempt()
                except flow_api.FlowApiError as error:
                    errors[key] = [type(error).__name__, str(error)]
            errors['name'] = this.get('name')
            this.save(output_value=errors)
        """,
    )
    assert parent.status is Status.ENDED_SUCCESS, parent.record().error
    out = parent.outputs
    assert out["empty"][0] == "InvalidCallError" and "must not be empty" in out["empty"][1]
    assert out["long"][0] == "UnstorableValueError" and "200" in out["long"][1]
    assert out["nul"][0] == "UnstorableValueError" and "NUL" in out["nul"][1]
    assert out["number"][0] == "InvalidCallError" and "must be a str" in out["number"][1]
    assert out["surrogate"][0] == "UnstorableValueError"
    assert out["save_number"][0] == "InvalidCallError"
    assert out["name"] == "parent" and parent.record().name is None
    assert parent.children() == []


def test_a_bad_name_at_start_is_refused_from_python_and_the_cli_and_nothing_is_stored(
    client, tmp_path
):
    path = write_flow(tmp_path, KID, "kid")
    with pytest.raises(InvalidCallError, match="must not be empty"):
        flowrt.start(path, name="")
    with pytest.raises(UnstorableValueError, match="200"):
        flowrt.start(path, name="n" * 201)
    result = invoke("run", path, "--name", "a\x00b")
    assert isinstance(result.exception, UnstorableValueError)
    assert client.list_executions() == []


def test_names_given_by_a_parent_or_by_save_are_what_get_and_load_return(client, tmp_path):
    client.register_flow("kid", write_flow(tmp_path, KID, "kid"))
    parent = _run(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            before = [this.get('name'), this.get('flow_name')]
            child = this.flow('kid', name='kid-7')
            this.save(name='renamed')
            renamed = this.get('name')
            plain = this.flow('kid')
            this.save(name=None)
            this.save(output_value={
                'before': before,
                'renamed': renamed,
                'back': this.get('name'),
                'child': child.get('output_value'),
                'child_load': child.load('name', 'flow_name'),
                'plain': plain.get('name'),
            })
        """,
    )
    assert parent.status is Status.ENDED_SUCCESS, parent.record().error
    assert parent.outputs == {
        "before": ["parent", "parent"],
        "renamed": "renamed",
        "back": "parent",
        "child": {"name": "kid-7", "flow": "kid"},
        "child_load": ["kid-7", "kid"],
        "plain": "kid",
    }
    named, plain = parent.children()
    assert named.record().name == "kid-7" and plain.record().name is None
    assert parent.record().name is None and parent.record().display_name == "parent"


def test_a_restore_keeps_the_name_an_execution_gave_itself_while_outputs_go_back(client, tmp_path):
    parent = _run(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            this.save(name='first')
            mark = this.save_dump('here')
            if mark.restored == 0:
                this.save(name='second', output_value={'attempt': 1})
                this.load_dump('here', by='name')
            this.save(output_value={**this.get('output_value'), 'name': this.get('name')})
        """,
    )
    assert parent.status is Status.ENDED_SUCCESS, parent.record().error
    assert parent.outputs == {"name": "second"}  # the outputs went back, the name did not
    assert parent.record().name == "second"


def test_a_name_given_at_start_is_shown_by_executions_and_show_as_text_and_json(client, tmp_path):
    path = write_flow(tmp_path, KID, "report")
    named = flowrt.start(path, name="nightly run").wait(30)
    plain = flowrt.start(path).wait(30)
    assert named.outputs == {"name": "nightly run", "flow": "report"}
    assert named.record().name == "nightly run" and plain.record().name is None

    text = invoke("executions")
    assert text.exit_code == 0, text.output
    lines = {line.split()[0]: line for line in text.stdout.splitlines()}
    assert "nightly run (report)" in lines[named.id]
    assert re.search(r"ENDED_SUCCESS\s+report\s", lines[plain.id])
    listed = {e["id"]: e for e in json.loads(invoke("executions", "--json").stdout)}
    assert listed[named.id]["name"] == "nightly run" and listed[named.id]["flow_name"] == "report"
    assert listed[plain.id]["name"] == "report"  # an execution goes by its flow's name

    assert re.search(r"name\s+nightly run", invoke("show", named.id).stdout)
    assert json.loads(invoke("show", named.id, "--json").stdout)["name"] == "nightly run"
    ran = invoke("run", path, "--name", "by hand")
    assert ran.exit_code == 0, ran.output
    assert '"name": "by hand"' in ran.stdout


RENAMING = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        given = this.get('name')
        this.save(name=given + ' (done)')
        this.save(output_value={'given': given, 'now': this.get('name')})
""")


def test_flowrt_start_name_on_real_workers_is_the_name_the_flow_reads_and_renames(
    production, tmp_path
):
    client, workers = production
    workers.start(concurrency=2)
    started = invoke("start", write_flow(tmp_path, RENAMING, "report"), "--name", "from the cli")
    assert started.exit_code == 0, started.output
    handle = client.get(started.stdout.strip())
    wait_until(lambda: handle.status.ended, 60, "the execution to end")
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert handle.outputs == {"given": "from the cli", "now": "from the cli (done)"}
    assert handle.record().name == "from the cli (done)"

"""The smaller execution calls of Cloudomation's flows: structured logs, set_output, end,
system.get, get_own_user and get_env_name."""

from __future__ import annotations

import textwrap

import pytest
from conftest import assert_refused, line_of, run_flow, wait_until, write_flow

import flowrt
from flowrt.status import Status

CARELESS = """
    import flow_api

    class Opaque:
        pass

    def handler(system, this):
        caught = {}
        for label, call in [
            ('no output', lambda: this.set_output()),
            ('one positional', lambda: this.set_output(RuntimeError('boom'))),
            ('key not text', lambda: this.set_output(1, 2)),
            ('three positional', lambda: this.set_output('a', 1, 2)),
            ('object', lambda: this.set_output('k', Opaque())),
            ('nan', lambda: this.set_output(k=float('nan'))),
            ('nul key', lambda: this.set_output('a\\x00', 1)),
            ('status', lambda: this.end('finished', 'done?')),
            ('status type', lambda: this.end(None)),
            ('log nul', lambda: this.log('a\\x00b', note='ok')),
            ('system field', lambda: system.get('colour')),
        ]:
            try:
                call()
            except flow_api.FlowApiError as error:
                caught[label] = [type(error).__name__, str(error)]
        this.save(output_value=caught)
"""


def test_careless_calls_raise_catchable_errors_and_change_nothing(client, tmp_path):
    handle = run_flow(client, tmp_path, CARELESS)
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert_refused(
        handle.outputs,
        {
            "no output": ("InvalidCallError", "a key and a value"),
            "one positional": ("InvalidCallError", "1 positional"),
            "key not text": ("InvalidCallError", "a key (a str)"),
            "three positional": ("InvalidCallError", "3 positional"),
            "object": ("SerializationError", "JSON-serialisable"),
            "nan": ("UnstorableValueError", "NaN"),
            "nul key": ("UnstorableValueError", "NUL"),
            "status": ("InvalidCallError", "'success', 'error' or 'cancelled'"),
            "status type": ("InvalidCallError", "'success', 'error' or 'cancelled'"),
            "log nul": ("UnstorableValueError", "NUL"),
            "system field": ("InvalidCallError", "system.get('colour')"),
        },
    )
    calls = [sp.call for sp in handle.savepoints()]
    assert calls == ["system.get", "save"]  # every other refusal was made before any savepoint
    assert handle.logs() == []


def test_log_takes_keyword_arguments_as_readable_key_value_pairs(client, tmp_path):
    source = """
    import flow_api

    def handler(system, this):
        this.log('plain', 'words', 3)
        this.log(check_task=('success', 'done'), rows=3, who='me', nothing=None)
        this.log('both', ok=True, at=object)
        this.log(escaped='a\\x00b')
    """
    handle = run_flow(client, tmp_path, source)
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    lines = [log.message for log in handle.logs()]
    assert lines[0] == "plain words 3"
    assert lines[1] == 'check_task=["success", "done"] rows=3 who="me" nothing=null'
    assert lines[2] == "both ok=true at=\"<class 'object'>\""
    assert lines[3] == 'escaped="a\\u0000b"'  # JSON escapes what a database refuses
    assert handle.logs()[1].line == line_of(textwrap.dedent(source), "check_task=")


def test_set_output_merges_outputs_and_a_restore_brings_the_earlier_ones_back(client, tmp_path):
    handle = run_flow(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            this.set_output('a', 1)
            this.set_output(b={'x': [1, 2]}, c='three')
            dump = this.save_dump('merged')
            if dump.restored:
                this.set_output('d', dump.restored)
                return this.success('restored')
            this.set_output('a', 'replaced')
            this.sleep(3600)
        """,
        timeout_s=0,
    )
    wait_until(lambda: handle.status is Status.WAITING, 30, "the sleep")
    assert handle.outputs == {"a": "replaced", "b": {"x": [1, 2]}, "c": "three"}
    handle.restore("merged", by="name")
    assert handle.wait(30).status is Status.ENDED_SUCCESS
    assert handle.outputs == {"a": 1, "b": {"x": [1, 2]}, "c": "three", "d": 1}


def test_set_output_after_save_keeps_what_save_stored(client, tmp_path):
    handle = run_flow(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            this.save(output_value={'kept': True})
            this.set_output(added=1)
            this.save(message='note')
            this.set_output('added', 2)
        """,
    )
    assert handle.outputs == {"kept": True, "added": 2}
    assert handle.record().message == "note"


@pytest.mark.parametrize(
    "status, ended",
    [
        ("success", Status.ENDED_SUCCESS),
        ("error", Status.ENDED_ERROR),
        ("cancelled", Status.ENDED_CANCELLED),
        ("ENDED_SUCCESS", Status.ENDED_SUCCESS),
        ("Ended_Error", Status.ENDED_ERROR),
    ],
)
def test_end_ends_the_execution_with_the_status_and_message_given(client, tmp_path, status, ended):
    source = f"""
    import flow_api

    def handler(system, this):
        try:
            this.end({status!r}, message='ended by end()')
        except Exception:
            this.set_output(swallowed=True)  # end() cannot be caught as an Exception
        this.set_output(after=True)
    """
    handle = run_flow(client, tmp_path, source)
    record = handle.record()
    assert record.status is ended and record.message == "ended by end()"
    assert record.outputs == {}
    if ended is Status.ENDED_ERROR:
        line = line_of(textwrap.dedent(source), "this.end(")
        assert record.error == f"this.end() at line {line}: ended by end()"
        assert record.error_line == line


def test_a_child_ended_cancelled_by_end_fails_its_waiting_parent(client, tmp_path):
    client.register_flow(
        "quits",
        write_flow(
            tmp_path,
            "import flow_api\n\ndef handler(system, this):\n    this.end('cancelled', 'no need')\n",
            "quits",
        ),
    )
    parent = run_flow(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            try:
                this.flow('quits')
            except flow_api.DependencyFailedError as error:
                return this.success(str(error))
        """,
    )
    assert parent.status is Status.ENDED_SUCCESS
    assert "ENDED_CANCELLED: no need" in parent.record().message


def test_system_get_reads_this_executions_fields_like_this_get(client, tmp_path):
    handle = run_flow(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            inputs = system.get('input_value')
            this.set_output(inputs=inputs, same=inputs == this.get('input_value'),
                            id=system.get('id') == this.get('id'))
        """,
        inputs={"gcloud_connection": "gc"},
    )
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert handle.outputs == {"inputs": {"gcloud_connection": "gc"}, "same": True, "id": True}


OWN_USER = """
    import flow_api

    def handler(system, this):
        user = system.get_own_user()
        this.set_output(
            name=user.get('name'), load=user.load('name'), attr=user.name,
            env=system.get_env_name(), repr=repr(user),
        )
        try:
            user.get('email')
        except flow_api.InvalidCallError as error:
            this.set_output(unknown=str(error))
"""


def test_own_user_and_environment_name_default_to_flowrt(client, tmp_path):
    handle = run_flow(client, tmp_path, OWN_USER)
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    out = handle.outputs
    assert (out["name"], out["load"], out["attr"], out["env"]) == ("flowrt",) * 4
    assert out["repr"] == "<user 'flowrt'>" and "'name'" in out["unknown"]
    calls = [sp.call for sp in handle.savepoints()]
    assert calls[:2] == ["system.get_own_user", "system.get_env_name"]


def test_own_user_and_environment_name_come_from_flowrt_user_and_flowrt_env_name(
    flowrt_env, tmp_path
):
    flowrt_env(FLOWRT_USER="ops", FLOWRT_ENV_NAME="staging")
    handle = run_flow(flowrt.default_client(), tmp_path, OWN_USER)
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert (handle.outputs["name"], handle.outputs["env"]) == ("ops", "staging")

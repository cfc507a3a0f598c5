"""The platform calls of Cloudomation's library flows: several fields of `this.get`, the own
client, `system.execution(id)` and `setting.list_append`."""

from __future__ import annotations

import threading
import uuid

from conftest import assert_refused, run_flow, wait_until, write_flow

import flowrt
from flowrt.calls import digest
from flowrt.status import Status

CARELESS = """
    import flow_api

    class Opaque:
        pass

    def handler(system, this):
        caught = {}
        history = system.setting('history')
        for label, call in [
            ('field not text', lambda: this.get('client_name', 3)),
            ('unknown field', lambda: this.get('id', 'colour')),
            ('client field', lambda: system.get_own_client().get('email')),
            ('id not uuid', lambda: system.execution('nope')),
            ('id not text', lambda: system.execution(None)),
            ('no such execution', lambda: system.execution(str(this.get('input_value')['gone']))),
            ('nan', lambda: history.list_append(float('nan'))),
            ('object', lambda: history.list_append(Opaque())),
            ('length zero', lambda: history.list_append(1, max_list_length=0)),
            ('length bool', lambda: history.list_append(1, max_list_length=True)),
            ('length text', lambda: history.list_append(1, max_list_length='3')),
            ('not a list', lambda: system.setting('config').list_append('x')),
            ('bad name', lambda: system.setting('').list_append('x')),
        ]:
            try:
                call()
            except flow_api.FlowApiError as error:
                caught[label] = [type(error).__name__, str(error)]
        this.save(output_value=caught)
"""


def test_careless_platform_calls_raise_catchable_errors_and_change_nothing(client, tmp_path):
    client.set_setting("config", {"keep": True})
    handle = run_flow(client, tmp_path, CARELESS, inputs={"gone": str(uuid.uuid4())})
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert_refused(
        handle.outputs,
        {
            "field not text": ("InvalidCallError", "a field name is a str, not int"),
            "unknown field": ("InvalidCallError", "this.get('colour'): the fields are"),
            "client field": ("InvalidCallError", "a client has the fields 'name'"),
            "id not uuid": ("InvalidCallError", "the id of an execution (a UUID str)"),
            "id not text": ("InvalidCallError", "the id of an execution"),
            "no such execution": ("NotFoundError", "execution"),
            "nan": ("UnstorableValueError", "NaN"),
            "object": ("SerializationError", "JSON-serialisable"),
            "length zero": ("InvalidCallError", "max_list_length is a whole number from 1"),
            "length bool": ("InvalidCallError", "max_list_length is a whole number from 1"),
            "length text": ("InvalidCallError", "max_list_length is a whole number from 1"),
            "not a list": ("InvalidCallError", "setting 'config' holds a dict, not a list"),
            "bad name": ("InvalidCallError", "must not be empty"),
        },
    )
    assert client.get_setting("config") == {"keep": True}
    assert "history" not in [s.name for s in client.store.list_named("setting")]


GET_FIELDS = """
    def handler(system, this):
        client_name, user_name = this.get('client_name', 'user_name')
        this.save(output_value={
            'pair': [client_name, user_name],
            'one': this.get('client_name'),
            'three': list(this.get('flow_name', 'status', 'user_name')),
            'client': system.get_own_client().get('name'),
            'repr': repr(system.get_own_client()),
        })
"""


def test_get_reads_several_fields_as_a_tuple_and_one_as_its_value_with_the_old_digest(
    client, tmp_path
):
    handle = run_flow(client, tmp_path, GET_FIELDS, name="fields")
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    out = handle.outputs
    assert out["pair"] == ["flowrt", "flowrt"] and out["one"] == "flowrt"
    assert out["three"] == ["fields", "RUNNING", "flowrt"]
    assert (out["client"], out["repr"]) == ("flowrt", "<client 'flowrt'>")
    gets = [sp for sp in handle.savepoints() if sp.call == "get"]
    # One field keeps the argument shape of journals written before several could be asked.
    assert gets[1].digest == digest("get", ("client_name",), {})
    assert gets[0].digest == digest("get", (("client_name", "user_name"),), {})
    assert "system.get_own_client" in [sp.call for sp in handle.savepoints()]


def test_client_and_user_names_come_from_flowrt_client_name_and_flowrt_user(flowrt_env, tmp_path):
    flowrt_env(FLOWRT_CLIENT_NAME="acme", FLOWRT_USER="ops")
    handle = run_flow(flowrt.default_client(), tmp_path, GET_FIELDS)
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert handle.outputs["pair"] == ["acme", "ops"] and handle.outputs["client"] == "acme"


def test_system_execution_reads_any_execution_and_acts_only_on_own_children(client, tmp_path):
    other_source = "def handler(system, this):\n    this.success('hi')\n"
    client.register_flow("x", write_flow(tmp_path, other_source, "x"))
    other = client.start("x").wait(30)
    handle = run_flow(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            other = system.execution(this.get('input_value')['other'].upper())
            out = {'read': list(other.load('status', 'message', 'flow_name')),
                   'id': other.id, 'name': other.get('name')}
            for method in ('wait', 'run', 'archive', 'delete'):
                try:
                    getattr(other, method)()
                except flow_api.InvalidCallError as error:
                    out[method] = str(error)
            child = this.flow('x', wait=False)
            mine = system.execution(child.id)
            mine.wait()
            mine.archive()
            out['mine'] = mine.load('status')
            this.save(output_value=out)
        """,
        inputs={"other": other.id},
    )
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    out = handle.outputs
    assert out["read"] == ["ENDED_SUCCESS", "hi", "x"] and out["id"] == other.id
    assert out["name"] == "x" and out["mine"] == "ENDED_SUCCESS"
    for method in ("wait", "run", "archive", "delete"):
        assert "is not a child of this execution" in out[method], method
    assert other.record().archived_at is None and other.status is Status.ENDED_SUCCESS


def test_list_append_creates_appends_drops_the_oldest_and_a_restore_replays_it(client, tmp_path):
    client.set_setting("held", None)  # what setting.acquire() creates: None counts as empty
    handle = run_flow(
        client,
        tmp_path,
        """
        def handler(system, this):
            history = system.setting('history')
            for n in range(5):
                history.list_append({'n': n}, max_list_length=3)
            system.setting('held').list_append('first')
            this.save_dump('appended')
            this.save(output_value={'history': history.get('value')})
            this.sleep(3600)
        """,
        timeout_s=0,
    )
    wait_until(lambda: handle.status is Status.WAITING, 30, "the flow to sleep")
    assert client.get_setting("history") == [{"n": 2}, {"n": 3}, {"n": 4}]
    assert client.get_setting("held") == ["first"]
    assert handle.outputs == {"history": [{"n": 2}, {"n": 3}, {"n": 4}]}
    calls = [sp.call for sp in handle.savepoints()]
    assert calls.count("setting.list_append") == 6
    client.set_setting("history", ["outside"])
    handle.restore("appended", by="name")  # the appends are answered from the journal
    wait_until(lambda: handle.outputs == {"history": ["outside"]}, 30, "the restored run")
    assert client.get_setting("held") == ["first"]
    handle.cancel()


def test_appenders_at_once_on_the_store_lose_nothing(store):
    threads, per_thread = 4, 25

    def append(worker: int) -> None:
        for n in range(per_thread):
            assert store.append_named("setting", "log", [worker, n]) is None

    runners = [threading.Thread(target=append, args=(w,)) for w in range(threads)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(60)
    record = store.get_named("setting", "log")
    assert record is not None
    expected = [(w, n) for w in range(threads) for n in range(per_thread)]
    assert sorted(map(tuple, record.value)) == expected
    newest = record.value[-1]
    assert store.append_named("setting", "log", "last", max_length=2) is None
    assert store.get_named("setting", "log").value == [newest, "last"]


def test_executions_appending_at_once_lose_nothing(client, tmp_path):
    source = """
        def handler(system, this):
            for n in range(10):
                system.setting('shared').list_append([this.get('input_value')['who'], n])
    """
    handles = [run_flow(client, tmp_path, source, inputs={"who": w}, timeout_s=0) for w in range(4)]
    for handle in handles:
        assert handle.wait(60).status is Status.ENDED_SUCCESS, handle.record().error
    shared = sorted(map(tuple, client.get_setting("shared")))
    assert shared == [(w, n) for w in range(4) for n in range(10)]

"""Child executions as Cloudomation scripts use them: inputs as keyword arguments, run=False
then run / run_async / wait, wait=system.return_when.ALL_ENDED, load, archive, delete, and
system.flow / flows / executions, each through a flow run by a worker.
"""

from __future__ import annotations

import re
import textwrap
from datetime import timedelta

import pytest
from conftest import SECRET, Recorder, wait_until, write_flow

from flowrt.clock import utc_now
from flowrt.errors import InvalidStateError
from flowrt.leases import reap
from flowrt.options import Options
from flowrt.runtime import Runtime
from flowrt.script import register_flow
from flowrt.status import Status
from flowrt.storage import StepCommit
from flowrt.writes import ended

KID = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        inputs = this.get('input_value')
        if inputs.get('hold'):
            this.pause()
        if inputs.get('fail'):
            this.error('kid failed: ' + str(inputs.get('why')))
        this.save(output_value={'got': inputs, 'name': this.get('name')})
""")

NEST = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        this.flow('kid', n=0)
        this.log('nest done')
""")


def _register(client, tmp_path, name: str = "kid", source: str = KID) -> None:
    client.register_flow(name, write_flow(tmp_path, source, name))


def _run(client, tmp_path, source: str, inputs=None, timeout_s: float = 30):
    handle = client.start(write_flow(tmp_path, textwrap.dedent(source), "parent"), inputs)
    return handle.wait(timeout_s)


# --- edges: careless calls, crashes, the reaper ------------------------------------------------


def test_bad_child_calls_raise_catchable_errors_at_their_line_and_start_nothing(client, tmp_path):
    _register(client, tmp_path)
    parent = _run(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            errors = {}
            tries = {
                'twice': lambda: this.flow('kid', inputs={'a': 1}, a=2),
                'twice_value': lambda: this.flow('kid', input_value={'b': 1}, b=2),
                'not_a_dict': lambda: this.flow('kid', inputs=[1, 2]),
                'nan': lambda: this.flow('kid', region=float('nan')),
                'wait': lambda: this.flow('kid', wait='yes'),
                'run': lambda: this.flow('kid', run='no'),
                'unknown_flow': lambda: this.flow('no-such-flow', run=False),
                'limit': lambda: system.executions(limit=0),
                'limit_type': lambda: system.executions(limit='5'),
                'wait_for_rule': lambda: this.wait_for(return_when='SOMETIMES'),
            }
            for key, attempt in tries.items():
                try:
                    attempt()
                except flow_api.FlowApiError as error:
                    errors[key] = [type(error).__name__, str(error)]
            this.save(output_value=errors)
        """,
    )
    assert parent.status is Status.ENDED_SUCCESS, parent.record().error
    errors = parent.outputs
    assert errors["twice"][0] == "InvalidCallError" and "'a' is given twice" in errors["twice"][1]
    assert "in inputs and in keyword arguments" in errors["twice"][1]
    assert "'b' is given twice" in errors["twice_value"][1]
    assert errors["not_a_dict"][0] == "SerializationError" and "dict" in errors["not_a_dict"][1]
    assert errors["nan"][0] == "UnstorableValueError"
    assert errors["wait"][0] == "InvalidCallError" and "ALL_ENDED" in errors["wait"][1]
    assert errors["run"][0] == "InvalidCallError" and "True or False" in errors["run"][1]
    assert errors["unknown_flow"][0] == "FlowNotFoundError"
    assert "1 to 1000" in errors["limit"][1] and "1 to 1000" in errors["limit_type"][1]
    assert "system.return_when" in errors["wait_for_rule"][1]
    assert parent.children() == []  # every refused call started nothing


def test_only_own_children_that_have_ended_can_be_run_archived_or_deleted_with_clear_errors(
    client, tmp_path
):
    _register(client, tmp_path)
    parent = _run(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            errors = {}
            me = [e for e in system.executions(limit=10) if e.id == this.get('id')][0]
            held = this.flow('kid', hold=True, wait=False)
            unstarted = this.flow('kid', run=False)
            tries = {
                'self_run': me.run, 'self_run_async': me.run_async,
                'self_archive': me.archive, 'self_delete': me.delete, 'self_wait': me.wait,
                'held_archive': held.archive, 'held_delete': held.delete,
                'unstarted_wait': unstarted.wait,
                'unstarted_wait_for': lambda: this.wait_for(unstarted, held),
                'bad_rule': lambda: held.wait(return_when='NEVER'),
                'bad_field': lambda: held.load('status', 'colour'),
                'no_field': lambda: held.load(),
            }
            for key, attempt in tries.items():
                try:
                    attempt()
                except flow_api.InvalidCallError as error:
                    errors[key] = str(error)
            errors['held'] = held.id
            errors['unstarted'] = unstarted.load('status')
            this.save(output_value=errors)
        """,
    )
    assert parent.status is Status.ENDED_SUCCESS, parent.record().error
    out = parent.outputs
    for key in ("self_run", "self_run_async", "self_archive", "self_delete", "self_wait"):
        assert "is not a child of this execution" in out[key], key
    for key in ("held_archive", "held_delete"):  # RUNNING, or PAUSED by itself already
        assert re.search(r"is (RUNNING|PAUSED); \w+ it once it has ended", out[key]), key
    assert "run=False" in out["unstarted_wait"] and "child.run()" in out["unstarted_wait"]
    assert "run=False" in out["unstarted_wait_for"]
    assert "system.return_when" in out["bad_rule"] and "'colour'" in out["bad_field"]
    assert "the fields are" in out["no_field"]
    assert out["unstarted"] == "PAUSED"
    held = client.get(out["held"])  # a refused delete deleted nothing
    wait_until(lambda: held.status is Status.PAUSED, 30, "the held child to pause itself")


class Crash(Exception):
    """A worker dying between performing a call and storing its step."""


def _crash_next_commit(monkeypatch, store) -> None:
    real = store.commit_step
    armed = [True]

    def commit_step(commit):
        if armed[0]:
            armed[0] = False
            raise Crash("the worker died before its step was stored")
        return real(commit)

    monkeypatch.setattr(store, "commit_step", commit_step)


RUN_LATER = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        child = this.flow('kid', run=False, n=7)
        child.run_async()
        this.success('started it')
""")


class History(Recorder):
    """A `Recorder` that also keeps every message it was given, delivered or not."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list = []

    def enqueue_step(self, ticket, *, worker=None, eta=None) -> None:
        self.history.append(ticket)
        super().enqueue_step(ticket, worker=worker, eta=eta)


@pytest.fixture
def stepped(store):
    """A worker runtime whose step messages the test delivers, with `kid` registered."""
    recorder = History()
    runtime = Runtime(store, Options(secret=SECRET.encode()), recorder, worker="w1")
    register_flow(store, runtime.journal.signer, "kid", KID)
    yield runtime, recorder
    runtime.close()


def test_a_step_run_again_after_a_crash_creates_and_starts_a_run_false_child_only_once(
    stepped, store, monkeypatch
):
    runtime, recorder = stepped
    parent = runtime.start("parent", RUN_LATER)
    recorder.deliver(runtime)  # start: parks at this.flow
    flow_step = recorder.sent[0][0]
    _crash_next_commit(monkeypatch, store)
    with pytest.raises(Crash):
        recorder.deliver(runtime)  # performs this.flow(run=False); its step is not stored
    runtime.step(flow_step.execution_id, flow_step.version, flow_step.head_id)  # redelivered
    (child,) = store.list_children(parent.id)
    assert child.status is Status.PAUSED and child.lease_until is None and child.head_id is None
    assert {t.call for t, _ in recorder.sent} == {"child.run_async"}  # nothing runs the child
    _crash_next_commit(monkeypatch, store)
    with pytest.raises(Crash):
        recorder.deliver(runtime)  # performs child.run_async; its step is not stored
    while recorder.sent:  # the rest, the run_async step again among them
        recorder.deliver(runtime)
    sent = [t.call for t in recorder.history if t.execution_id == child.id]
    # Started once, then stepped: the second run_async found it started.
    assert sent[0] == "run" and sent.count("run") == 1 and "start" not in sent
    assert store.get_execution(parent.id).status is Status.ENDED_SUCCESS
    done = store.get_execution(child.id)
    assert done.status is Status.ENDED_SUCCESS and done.outputs["got"] == {"n": 7}
    assert store.list_children(parent.id) == [done]


def test_a_child_created_with_run_false_is_never_run_by_the_reaper_until_it_is_started(
    stepped, store
):
    runtime, recorder = stepped
    source = "def handler(system, this):\n    this.flow('kid', run=False)\n"
    parent = runtime.start("parent", source)
    while recorder.sent:
        recorder.deliver(runtime)
    assert store.get_execution(parent.id).status is Status.ENDED_SUCCESS
    (child,) = store.list_children(parent.id)
    assert child.status is Status.PAUSED and child.worker is None and child.lease_until is None
    later = utc_now() + timedelta(days=1)
    assert child.id not in {r.id for r in store.overdue(later, 1000)}
    reap(runtime)
    assert recorder.sent == [] and store.get_execution(child.id).version == child.version
    runtime.resume(child.id)  # an operator may start it: `flowrt resume ID`
    while recorder.sent:
        recorder.deliver(runtime)
    assert store.get_execution(child.id).status is Status.ENDED_SUCCESS


def test_the_store_deletes_an_ended_execution_with_its_descendants_and_refuses_while_one_runs(
    store,
):
    parent = store.create_execution("p", "s", {})
    child = store.create_execution("c", "s", {}, parent_id=parent.id, name="kid")
    grandchild = store.create_execution("g", "s", {}, parent_id=child.id)
    other = store.create_execution("o", "s", {}, parent_id=parent.id)
    for record in (child, other):
        store.commit_step(StepCommit(record.id, 0, ended(Status.ENDED_SUCCESS)))
    with pytest.raises(InvalidStateError, match=f"cannot delete execution {grandchild.id}"):
        store.delete_execution(child.id)  # the grandchild runs: nothing is deleted
    assert len(store.get_executions([child.id, grandchild.id])) == 2
    store.commit_step(StepCommit(grandchild.id, 0, ended(Status.ENDED_ERROR)))
    assert sorted(store.delete_execution(child.id)) == sorted([child.id, grandchild.id])
    assert store.get_executions([child.id, grandchild.id]) == []
    assert [r.id for r in store.list_children(parent.id)] == [other.id]
    assert store.delete_execution(child.id) == []  # gone already
    assert store.delete_execution("not-an-id") == []


# --- what the calls do --------------------------------------------------------------------------


def test_keyword_arguments_and_input_value_become_the_childs_inputs(client, tmp_path):
    _register(client, tmp_path)
    parent = _run(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            child = this.flow(
                'kid', input_value={'a': 1}, inputs={'b': [2]}, region='eu', name='kid-1'
            )
            this.save(output_value={
                'out': child.get('output_value'),
                'name': child.get('name'),
                'flow': child.get('flow_name'),
            })
        """,
    )
    assert parent.status is Status.ENDED_SUCCESS, parent.record().error
    (child,) = parent.children()
    assert child.record().inputs == {"a": 1, "b": [2], "region": "eu"}  # name= is no input
    assert parent.outputs == {
        "out": {"got": {"a": 1, "b": [2], "region": "eu"}, "name": "kid-1"},
        "name": "kid-1",
        "flow": "kid",
    }


def test_wait_all_ended_returns_a_failed_child_without_raising_and_its_status_is_readable(
    client, tmp_path
):
    _register(client, tmp_path)
    parent = _run(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            bad = this.flow('kid', fail=True, why='disk', wait=system.return_when.ALL_ENDED)
            first = this.flow('kid', fail=True, why='net', wait=system.return_when.FIRST_ENDED)
            status, message = bad.load('status', 'message')
            this.save(output_value={
                'status': status, 'message': message, 'first': first.load('status'),
            })
        """,
    )
    assert parent.status is Status.ENDED_SUCCESS, parent.record().error
    assert parent.outputs == {
        "status": "ENDED_ERROR",
        "message": "kid failed: disk",
        "first": "ENDED_ERROR",
    }
    assert [c.status for c in parent.children()] == [Status.ENDED_ERROR] * 2


def test_run_false_children_start_with_run_or_run_async_and_wait_as_wait_for_does(client, tmp_path):
    _register(client, tmp_path)
    parent = _run(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            a = this.flow('kid', run=False, n=1)
            b = this.flow('kid', run=False, fail=True, why='late')
            before = [a.load('status'), b.load('status')]
            a.run_async()
            b.run_async()
            b.wait(return_when=system.return_when.ALL_ENDED)
            a.wait()
            c = this.flow('kid', run=False, n=3).run()
            d = this.flow('kid', run=False, fail=True, why='run')
            try:
                d.run()
                raised = None
            except flow_api.DependencyFailedError as error:
                raised = [error.status, error.child_id == d.id]
            this.save(output_value={
                'before': before,
                'a': a.load('status', 'output_value'),
                'b': b.load('status', 'message'),
                'c': c.get('output_value'),
                'raised': raised,
            })
        """,
    )
    assert parent.status is Status.ENDED_SUCCESS, parent.record().error
    assert parent.outputs == {
        "before": ["PAUSED", "PAUSED"],
        "a": ["ENDED_SUCCESS", {"got": {"n": 1}, "name": "kid"}],
        "b": ["ENDED_ERROR", "kid failed: late"],
        "c": {"got": {"n": 3}, "name": "kid"},
        "raised": ["ENDED_ERROR", True],
    }
    assert len(parent.children()) == 4


def test_an_ended_child_is_archived_or_deleted_with_its_own_children_and_logs(client, tmp_path):
    _register(client, tmp_path)
    _register(client, tmp_path, "nest", NEST)
    parent = _run(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            keep = this.flow('kid', n=1)
            gone = this.flow('nest')
            keep.archive()
            gone.delete()
            try:
                gone.get('status')
                missing = None
            except flow_api.NotFoundError as error:
                missing = str(error)
            this.save(output_value={
                'keep': keep.load('status', 'output_value'), 'gone': gone.id, 'missing': missing,
            })
        """,
    )
    assert parent.status is Status.ENDED_SUCCESS, parent.record().error
    out = parent.outputs
    assert out["keep"] == ["ENDED_SUCCESS", {"got": {"n": 1}, "name": "kid"}]
    assert out["missing"].startswith(f"no execution named {out['gone']!r}")
    (keep,) = parent.children()
    assert keep.record().archived_at is not None and keep.savepoints() == []
    store = client.store
    assert store.get_executions([out["gone"]]) == [] and store.list_logs(out["gone"]) == []
    kids = [r for r in store.list_executions(100) if r.flow_name == "kid"]
    assert [r.id for r in kids] == [keep.id]  # the grandchild went with its parent


def test_a_flow_registers_reads_updates_and_runs_a_flow_through_system_flow(client, tmp_path):
    made = "import flow_api\n\ndef handler(system, this):\n    this.save(output_value={'v': 1})\n"
    parent = _run(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            flow = system.flow('made')
            existed = flow.exists()
            flow.save(script=this.get('input_value')['script'])
            script = flow.get('script')
            name, updated = flow.load('name', 'updated_at')
            first = this.flow('made').get('output_value')
            flow.save(script=script.replace('1', '2'))
            second = this.flow('made').get('output_value')
            listed = [f.name for f in system.flows()]
            this.save(output_value={
                'existed': existed, 'script': script, 'name': name, 'updated': updated,
                'first': first, 'second': second, 'listed': listed, 'now': flow.exists(),
            })
        """,
        {"script": made},
    )
    assert parent.status is Status.ENDED_SUCCESS, parent.record().error
    out = parent.outputs
    assert out["existed"] is False and out["now"] is True
    assert out["script"] == made and out["name"] == "made" and out["listed"] == ["made"]
    assert out["first"] == {"v": 1} and out["second"] == {"v": 2}
    name, source = client.resolve_flow("made")  # signed like `flowrt flow set`
    assert name == "made" and "'v': 2" in source


def test_a_script_that_cannot_start_is_refused_with_script_error_and_nothing_is_stored(
    client, tmp_path
):
    parent = _run(
        client,
        tmp_path,
        """
        import flow_api

        GOOD = 'def handler(system, this):\\n    pass\\n'

        def handler(system, this):
            errors = {}
            tries = {
                'syntax': lambda: system.flow('broken').save(script='def handler(:\\n'),
                'no_handler': lambda: system.flow('broken').save(script='x = 1\\n'),
                'raises': lambda: system.flow('broken').save(script='x = 1\\nraise KeyError(1)'),
                'not_text': lambda: system.flow('broken').save(script=5),
                'other_field': lambda: system.flow('broken').save(source=GOOD),
                'py_name': lambda: system.flow('deploy.py').save(script=GOOD),
                'empty_name': lambda: system.flow('').get(),
                'missing': lambda: system.flow('missing').get(),
                'field': lambda: system.flow('missing').get('colour'),
            }
            for key, attempt in tries.items():
                try:
                    attempt()
                except flow_api.FlowApiError as error:
                    errors[key] = [type(error).__name__, str(error), getattr(error, 'line', None)]
            errors['stored'] = [f.name for f in system.flows()]
            this.save(output_value=errors)
        """,
    )
    assert parent.status is Status.ENDED_SUCCESS, parent.record().error
    out = parent.outputs
    assert out["syntax"][0] == "ScriptError" and out["syntax"][2] == 1
    assert out["no_handler"][0] == "ScriptError" and "handler" in out["no_handler"][1]
    assert out["raises"][0] == "ScriptError" and out["raises"][2] == 2
    assert out["not_text"][0] == "InvalidCallError" and "str" in out["not_text"][1]
    assert out["other_field"][0] == "InvalidCallError" and "source" in out["other_field"][1]
    assert out["py_name"][0] == "ScriptError" and ".py" in out["py_name"][1]
    assert out["empty_name"][0] == "InvalidCallError"
    assert out["missing"][0] == "NotFoundError" and "flowrt flow set" in out["missing"][1]
    assert out["field"][0] == "InvalidCallError" and "'script'" in out["field"][1]
    assert out["stored"] == []


def test_system_executions_lists_the_newest_executions_bounded_by_limit(client, tmp_path):
    _register(client, tmp_path)
    older = [client.start("kid", {"n": n}).wait(30) for n in range(3)]
    parent = _run(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            listed = system.executions(limit=3)
            this.save(output_value={
                'ids': [e.id for e in listed],
                'names': [e.load('name') for e in listed],
            })
        """,
    )
    assert parent.status is Status.ENDED_SUCCESS, parent.record().error
    assert parent.outputs["ids"] == [parent.id, older[2].id, older[1].id]
    assert parent.outputs["names"] == ["parent", "kid", "kid"]


# --- on real workers ----------------------------------------------------------------------------


def test_on_real_workers_kwargs_inputs_run_false_run_async_wait_and_all_ended(production, tmp_path):
    client, workers = production
    _register(client, tmp_path)
    workers.start(concurrency=2)
    workers.start(concurrency=2)
    parent = client.start(
        write_flow(
            tmp_path,
            textwrap.dedent("""
                import flow_api

                def handler(system, this):
                    later = this.flow('kid', run=False, region='eu', input_value={'n': 5})
                    paused = later.load('status')
                    later.run_async()
                    later.wait(return_when=system.return_when.ALL_ENDED)
                    bad = this.flow('kid', fail=True, why='x', wait=system.return_when.ALL_ENDED)
                    this.save(output_value={
                        'paused': paused,
                        'later': later.load('status', 'output_value'),
                        'bad': bad.load('status'),
                    })
            """),
            "parent",
        )
    )
    wait_until(lambda: parent.status.ended, 60, "the parent to end")
    assert parent.status is Status.ENDED_SUCCESS, parent.record().error
    assert parent.outputs == {
        "paused": "PAUSED",
        "later": ["ENDED_SUCCESS", {"got": {"n": 5, "region": "eu"}, "name": "kid"}],
        "bad": "ENDED_ERROR",
    }

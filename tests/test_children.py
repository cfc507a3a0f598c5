"""Child executions: this.flow(), this.wait_for() and DependencyFailedError, as a flow uses them."""

from __future__ import annotations

import textwrap

from conftest import line_of, wait_until, write_flow

from flowrt.status import Status

CHILD = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        inputs = this.get('input_value')
        this.sleep(inputs.get('sleep', 0))
        if inputs.get('fail'):
            this.error('child refused ' + str(inputs['k']))
        this.save(output_value={'double': inputs['k'] * 2})
""")


def _register_child(client, tmp_path, source: str = CHILD) -> None:
    client.register_flow("child", write_flow(tmp_path, source, "child"))


def _start(client, tmp_path, source: str, inputs=None):
    return client.start(write_flow(tmp_path, textwrap.dedent(source), "parent"), inputs)


def test_a_child_started_with_wait_returns_its_handle_once_it_succeeded(client, tmp_path):
    _register_child(client, tmp_path)
    parent = _start(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            child = this.flow('child', inputs={'k': 21})
            this.save(output_value={
                'out': child.get('output_value'),
                'status': child.get('status'),
                'id': child.id,
            })
        """,
    ).wait(30)
    assert parent.status is Status.ENDED_SUCCESS
    (child,) = parent.children()
    assert parent.outputs == {
        "out": {"double": 42},
        "status": "ENDED_SUCCESS",
        "id": child.id,
    }
    assert child.record().parent_id == parent.id and child.outputs == {"double": 42}


def test_children_started_without_waiting_run_side_by_side_and_wait_for_returns_the_ended(
    client, tmp_path
):
    _register_child(client, tmp_path)
    parent = _start(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            slow = this.flow('child', inputs={'k': 1, 'sleep': 1.5}, wait=False)
            fast = this.flow('child', inputs={'k': 2}, wait=False)
            first = this.wait_for(slow, fast, return_when=system.return_when.FIRST_ENDED)
            early = slow.get('status')
            every = this.wait_for(slow, fast, return_when=system.return_when.ALL_ENDED)
            this.save(output_value={
                'first': [c.id for c in first],
                'slow_then': early,
                'all': sorted(c.id for c in every),
                'ids': [slow.id, fast.id],
            })
        """,
    ).wait(30)
    assert parent.status is Status.ENDED_SUCCESS, parent.record().error
    slow, fast = parent.outputs["ids"]
    assert parent.outputs["first"] == [fast]  # only the fast child had ended
    assert parent.outputs["slow_then"] in ("RUNNING", "WAITING")
    assert parent.outputs["all"] == sorted([slow, fast])


def test_a_failed_child_raises_dependency_failed_error_that_the_parent_may_catch(client, tmp_path):
    _register_child(client, tmp_path)
    parent = _start(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            try:
                this.flow('child', inputs={'k': 5, 'fail': True})
            except flow_api.DependencyFailedError as error:
                this.save(output_value={'caught': str(error), 'status': error.status})
        """,
    ).wait(30)
    assert parent.status is Status.ENDED_SUCCESS
    (child,) = parent.children()
    assert child.status is Status.ENDED_ERROR
    assert parent.outputs["status"] == "ENDED_ERROR"
    assert child.id in parent.outputs["caught"] and "child refused 5" in parent.outputs["caught"]


def test_an_uncaught_dependency_failure_ends_the_parent_at_the_line_that_waited(client, tmp_path):
    _register_child(client, tmp_path)
    source = textwrap.dedent("""
        import flow_api

        def handler(system, this):
            ok = this.flow('child', inputs={'k': 1}, wait=False)
            bad = this.flow('child', inputs={'k': 2, 'fail': True}, wait=False)
            this.wait_for(ok, bad)
    """)
    parent = client.start(write_flow(tmp_path, source, "parent")).wait(30)
    record = parent.record()
    assert record.status is Status.ENDED_ERROR
    assert record.message.startswith("DependencyFailedError: child execution")
    assert record.error_line == line_of(source, "this.wait_for(ok, bad)")


def test_a_parent_waiting_for_its_child_holds_no_worker_slot(flowrt_env, tmp_path):
    flowrt_env(FLOWRT_WORKER_CONCURRENCY="1")
    import flowrt

    client = flowrt.default_client()
    nested = textwrap.dedent("""
        import flow_api

        def handler(system, this):
            depth = this.get('input_value')['depth']
            if depth == 0:
                this.save(output_value={'leaf': True})
                return
            child = this.flow('nested', inputs={'depth': depth - 1})
            this.save(output_value={'below': child.get('output_value')})
    """)
    client.register_flow("nested", write_flow(tmp_path, nested, "nested"))
    # One worker thread runs all three generations: a parent that held it while it waited
    # would leave its child nothing to run on.
    top = client.start("nested", {"depth": 2}).wait(30)
    assert top.status is Status.ENDED_SUCCESS
    assert top.outputs == {"below": {"below": {"leaf": True}}}


def test_a_parent_waiting_past_sleep_max_is_unloaded_and_woken_when_its_child_ends(
    flowrt_env, tmp_path
):
    flowrt_env(FLOWRT_SLEEP_MAX_SECONDS="0.3", FLOWRT_LEASE_SECONDS="0.6")
    import flowrt

    client = flowrt.default_client()
    _register_child(client, tmp_path)
    parent = _start(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            child = this.flow('child', inputs={'k': 4, 'sleep': 2})
            this.save(output_value=child.get('output_value'))
        """,
    )
    wait_until(lambda: parent.record().status is Status.WAITING, 10, "the parent to wait")
    unloaded = wait_until(
        lambda: (r := parent.record()).worker is None and r.status is Status.WAITING, 10
    )
    assert unloaded
    parent.wait(30)
    assert parent.status is Status.ENDED_SUCCESS and parent.outputs == {"double": 8}


def test_a_step_that_runs_again_finds_the_child_it_started_instead_of_starting_another(
    client, tmp_path
):
    _register_child(client, tmp_path)
    parent = _start(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            point = this.save_dump('again')
            child = this.flow('child', inputs={'k': 3})
            if point.restored == 0:
                this.load_dump('again', by='name')
            this.save(output_value={'child': child.id})
        """,
    ).wait(30)
    # The restore re-runs this.flow from a new savepoint: a new call, so a second child;
    # but each call's child is fixed by its savepoint, so there are exactly two.
    assert parent.status is Status.ENDED_SUCCESS
    children = parent.children()
    assert len(children) == 2 and parent.outputs["child"] == children[1].id
    runtime = client.runtime
    call = [sp for sp in parent.savepoints() if sp.call == "flow"][0]

    class AtCall:  # what start_child needs of a live execution: its id and its call's head
        execution_id = parent.id
        head = call

    again = runtime.start_child(AtCall(), "child", {"k": 3})  # type: ignore[arg-type]
    assert again.id == children[0].id and len(parent.children()) == 2


def test_bad_child_calls_fail_at_their_line_with_what_to_do(client, tmp_path):
    source = textwrap.dedent("""
        import flow_api

        def handler(system, this):
            errors = []
            try:
                this.flow('no-such-flow')
            except flow_api.FlowApiError as error:
                errors.append(str(error))
            except Exception as error:
                errors.append(type(error).__name__ + ': ' + str(error))
            try:
                this.wait_for('01a20f00-0000-7000-8000-000000000000')
            except flow_api.FlowApiError as error:
                errors.append(str(error))
            this.save(output_value={'errors': errors})
    """)
    handle = client.start(write_flow(tmp_path, source, "bad")).wait(30)
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    missing, stranger = handle.outputs["errors"]
    assert "no-such-flow" in missing and "flowrt flow set" in missing
    assert "is not a child of this execution" in stranger

"""Cloudomation's INPUT connection: `this.task('INPUT', request=...)` asks people through a
message, waits as WAITING, and reads `{'response': ..., 'reference': ...}` as its output.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from conftest import line_of, wait_until, write_flow
from test_flow_messages import _respond

from flowrt.client import Client, Handle
from flowrt.status import Status
from flowrt.storage import MessageRecord

ASK_ONE = """\
import flow_api

def handler(system, this):
    task = this.task('INPUT', request='Which country?\\nOne, please.', reference='country')
    outputs = task.get('output_value')
    this.log(asked=outputs['response'])
    this.save(output_value={'outputs': outputs, 'status': task.get('status')})
    return this.success('thanks')
"""

ASK_IN_PARALLEL = """\
import flow_api

def handler(system, this):
    tasks = [
        this.task('INPUT', run=False, name=field, reference=field, request=f'Your {field}?',
                  type=kind).run_async()
        for field, kind in (('name', 'string'), ('age', 'number'))
    ]
    this.wait_for(*tasks, return_when=system.return_when.ALL_ENDED)
    answers = {t.get('output_value')['reference']: t.get('output_value')['response']
               for t in tasks}
    this.save(output_value=answers)
    return this.success('all answered')
"""


def _start(client: Client, tmp_path: Path, source: str) -> Handle:
    return client.start(write_flow(tmp_path, source))


def _pending(handle: Handle, count: int) -> list[MessageRecord]:
    def asked() -> list[MessageRecord] | None:
        pending = [m for m in handle.messages() if m.responded_at is None]
        return pending if len(pending) == count else None

    return wait_until(asked, 30, f"{count} questions of {handle.id}")  # type: ignore[return-value]


def test_an_input_asks_waits_and_reads_the_response_given_with_the_cli(
    client: Client, flowrt_env, tmp_path: Path
) -> None:
    env = flowrt_env()
    asking = _start(client, tmp_path, ASK_ONE)
    [question] = _pending(asking, 1)
    assert question.subject == "Which country?"
    assert question.body["properties"]["response"]["label"] == "Which country?\nOne, please."
    wait_until(lambda: asking.record().status is Status.WAITING, 30, "the flow to wait")

    refused = _respond(env, question.id, {"answer": "Austria"})
    assert refused.returncode == 2 and "response" in refused.stderr
    assert _respond(env, question.id, {"response": "Austria"}).returncode == 0

    record = asking.wait(30).record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs == {
        "outputs": {"response": "Austria", "reference": "country"},
        "status": "ENDED_SUCCESS",
    }
    assert [line.message for line in asking.logs()] == ['asked="Austria"']


def test_inputs_asked_with_run_async_are_pending_together_and_wait_for_gathers_them(
    client: Client, tmp_path: Path
) -> None:
    asking = _start(client, tmp_path, ASK_IN_PARALLEL)
    questions = {m.subject: m for m in _pending(asking, 2)}  # both asked before any answer
    assert set(questions) == {"Your name?", "Your age?"}
    assert questions["Your age?"].body["properties"]["response"]["type"] == "number"
    client.respond(questions["Your age?"].id, {"response": 42})
    client.respond(questions["Your name?"].id, {"response": "Ann"})
    record = asking.wait(30).record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs == {"name": "Ann", "age": 42}


def test_an_input_nobody_answers_in_time_ends_it_as_an_error_or_raises(
    client: Client, tmp_path: Path
) -> None:
    source = """\
import flow_api

def handler(system, this):
    patient = this.task('INPUT', request='Quick?', timeout=0.2,
                        wait=system.return_when.ALL_ENDED)
    try:
        this.task('INPUT', request='Quicker?', timeout=0.2)
    except flow_api.TimeoutExceededError as error:
        raised = str(error)
    this.save(output_value={'status': patient.get('status'), 'message': patient.get('message'),
                            'raised': raised})
    return this.success('gave up')
"""
    record = _start(client, tmp_path, source).wait(30).record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs["status"] == "ENDED_ERROR"
    assert "nobody responded" in record.outputs["message"]
    assert "nobody responded" in record.outputs["raised"]


def test_bad_inputs_are_refused_at_the_flows_line_and_ask_nothing(
    client: Client, tmp_path: Path
) -> None:
    source = textwrap.dedent(
        """\
        import flow_api

        def handler(system, this):
            problems = []
            for params in ({}, {'request': ''}, {'request': 'x', 'type': 'colour'},
                           {'request': 'x', 'colour': 'red'}, {'request': 'x', 'timeout': -1},
                           {'request': 'a\\x00b'}):
                try:
                    this.task('INPUT', **params)
                except flow_api.FlowApiError as error:
                    problems.append(type(error).__name__ + ': ' + str(error))
            this.save(output_value={'problems': problems})
            this.task('INPUT')  # the last one is not caught
        """
    )
    handle = _start(client, tmp_path, source).wait(30)
    record = handle.record()
    assert record.status is Status.ENDED_ERROR
    assert record.error_line == line_of(source, "this.task('INPUT')  #")
    problems = record.outputs["problems"]
    assert len(problems) == 6, problems
    assert "needs request=" in problems[0] and "needs request=" in problems[1]
    assert "type='colour'" in problems[2] and "'colour'" in problems[3]
    assert problems[4].startswith("InvalidCallError") and problems[5].startswith("Unstorable")
    assert handle.messages() == []

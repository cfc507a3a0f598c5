"""A call flowrt refuses changes nothing; what a flow is handed it cannot change behind flowrt."""

from __future__ import annotations

import textwrap
from pathlib import Path

from conftest import write_flow

import flowrt
from flowrt.status import Status


def flow(tmp_path: Path, body: str, name: str = "flow") -> str:
    return write_flow(tmp_path, "import flow_api\n\n" + textwrap.dedent(body), name)


def test_a_save_refused_as_too_large_leaves_the_stored_outputs_as_they_were(flowrt_env, tmp_path):
    flowrt_env(FLOWRT_MAX_ANSWER_BYTES="1000")
    path = flow(
        tmp_path,
        """
        def handler(system, this):
            this.save(output_value={'small': 1}, message='kept')
            try:
                this.save(output_value={'big': 'x' * 5000}, message='refused')
            except flow_api.AnswerTooLargeError as error:
                this.log('refused:', type(error).__name__)
            this.log('outputs now:', str(this.get('output_value')))
            this.error('stop here, outputs as stored')
    """,
    )
    handle = flowrt.start(path).wait(30)
    record = handle.record()
    assert record.status is Status.ENDED_ERROR, record.error
    assert record.outputs == {"small": 1}
    assert [log.message for log in handle.logs()] == [
        "refused: AnswerTooLargeError",
        "outputs now: {'small': 1}",
    ]


def test_mutating_the_inputs_a_flow_was_given_does_not_change_its_input_value(client, tmp_path):
    path = flow(
        tmp_path,
        """
        def handler(system, this, inputs):
            inputs['items'].append('added by the flow')
            inputs['extra'] = True
            first = this.get('input_value')
            first['items'].append('added to an answer')
            again = this.get('input_value')
            this.save(output_value={'first': first, 'again': again})
    """,
    )
    handle = flowrt.start(path, {"items": ["a"]}).wait(30)
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert handle.outputs["again"] == {"items": ["a"]}
    assert handle.outputs["first"] == {"items": ["a", "added to an answer"]}
    assert handle.record().inputs == {"items": ["a"]}

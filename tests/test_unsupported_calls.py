"""What flowrt lacks of Cloudomation's Flow-API says so: `system.user(...)`, `this.script(...)`
or `connection.clone()` raise `UnsupportedCallError` (a `FlowApiError`, and an
`AttributeError` as Python's own) naming the call and why; a typo stays a plain AttributeError.
"""

from __future__ import annotations

from pathlib import Path

from conftest import line_of, write_flow

from flowrt.client import Client
from flowrt.status import Status

FLOW = """\
import flow_api

def handler(system, this):
    refused = []
    for use in (lambda: system.user('ann'), lambda: system.vault_config('v'),
                lambda: this.script('def handler(system, this): pass'),
                lambda: this.task('REST', url='http://127.0.0.1:9/x', run=False).clone()):
        try:
            use()
        except flow_api.UnsupportedCallError as error:
            refused.append(str(error))
    try:
        this.sucess('typo')
    except flow_api.FlowApiError:
        refused.append('a typo is not a Flow-API error')
    except AttributeError as error:
        typo = str(error)
    this.save(output_value={'refused': refused, 'typo': typo,
                            'has_script': hasattr(this, 'script')})
    system.get_own_client_list()
"""


def test_cloudomation_calls_flowrt_lacks_raise_a_flow_api_error_saying_why(
    client: Client, tmp_path: Path
) -> None:
    record = client.start(write_flow(tmp_path, FLOW)).wait(30).record()
    assert record.status is Status.ENDED_ERROR
    assert record.error_line == line_of(FLOW, "system.get_own_client_list()")
    refused = record.outputs["refused"]
    assert len(refused) == 4, refused
    assert refused[0].startswith("system.user is Cloudomation's and flowrt does not support it")
    assert "no users" in refused[0] and "no vault" in refused[1]
    assert "system.flow(name).save(script=...)" in refused[2]
    assert refused[3].startswith("connection.clone is Cloudomation's") and "step" in refused[3]
    assert record.outputs["typo"] == "this.sucess: flowrt's Flow-API has no such attribute"
    assert record.outputs["has_script"] is False
    assert "AttributeError: system.get_own_client_list" in record.error

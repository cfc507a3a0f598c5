"""Messages in the web view: list them, answer one from the API and from the execution page."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from fastapi.testclient import TestClient

from flowrt.client import Client
from flowrt.web import create_app
from tests.conftest import wait_until, write_flow
from tests.test_web_api import _cli_refusal, post

ASKING = textwrap.dedent(
    """
    FORM = {
        "type": "object",
        "properties": {
            "name": {"element": "string", "type": "string", "label": "Name"},
            "count": {"element": "number", "type": "integer", "minimum": 1},
        },
        "required": ["name"],
    }

    def handler(system, this):
        msg = system.message(subject='Who deploys?', message_type='POPUP', body=FORM)
        response = msg.wait().get('response')
        this.save(output_value={'response': response})
    """
)


def _asking(client: Client, tmp_path: Path) -> tuple[str, str]:
    """An execution WAITING for its message's response; (execution id, message id)."""
    handle = client.start(write_flow(tmp_path, ASKING, "asking"))
    wait_until(lambda: handle.status.value == "WAITING", 60, "the flow waits for its message")
    (message,) = client.list_messages(handle.id)
    return handle.id, message.id


def test_list_and_answer_a_message_through_the_api(client: Client, tmp_path: Path):
    api = TestClient(create_app(client, users=[]))
    execution_id, message_id = _asking(client, tmp_path)
    pending = api.get("/api/messages").json()
    assert [(m["id"], m["subject"], m["responded_at"]) for m in pending] == [
        (message_id, "Who deploys?", None)
    ]
    assert pending[0]["execution_id"] == execution_id
    of_one = api.get("/api/messages", params={"execution": execution_id}).json()
    assert [m["id"] for m in of_one] == [message_id]
    assert api.get("/api/messages", params={"execution": "nothing-such"}).json() == []

    page = api.get(f"/executions/{execution_id}").text
    assert f'data-respond="{message_id}"' in page and "Who deploys?" in page

    respond = f"/api/messages/{message_id}/respond"
    for bad in ({"count": 2}, {"name": "ann", "count": 0}, {"name": 5}):
        refused = post(api, respond, bad)
        assert refused.status_code == 400, refused.text
        expected = _cli_refusal("respond", message_id, "--response", json.dumps(bad))
        assert refused.json()["detail"] == expected, bad
    for not_an_object in (["ann"], "ann", 5):
        assert post(api, respond, not_an_object).status_code == 400
    assert client.get(execution_id).status.value == "WAITING"  # nothing was answered

    answered = post(api, respond, {"name": "ann", "count": 2})
    assert answered.status_code == 200, answered.text
    assert answered.json()["response"] == {"name": "ann", "count": 2}
    again = post(api, respond, {"name": "bob"})
    assert again.status_code == 409
    assert again.json()["detail"] == _cli_refusal(
        "respond", message_id, "--response", '{"name": "bob"}'
    )
    handle = client.get(execution_id).wait(60)
    assert handle.status.value == "ENDED_SUCCESS"
    assert handle.outputs == {"response": {"name": "ann", "count": 2}}
    assert api.get("/api/messages").json() == []
    assert "data-respond" not in api.get(f"/executions/{execution_id}").text

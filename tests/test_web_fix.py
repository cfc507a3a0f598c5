"""Fix the script, keep the execution, from the web view: check a pasted script or a registered
flow version against a failed execution's journal, and restore under it at a savepoint."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

from flowrt.client import Client
from flowrt.script import script_hash
from flowrt.web import create_app
from tests.conftest import line_of, write_flow
from tests.test_web_api import FLOW, _cli_refusal, post, start_failing

# The same calls up to the savepoint "before-check"; then no setting is asked for.
FIXED = FLOW.replace(
    "    if not system.setting('go').exists():\n"
    "        raise RuntimeError(f'not ready to ship {total}')\n",
    "",
)
# Reads another field first: it does not replay the journal.
DIVERGING = FLOW.replace("this.get('input_value')", "this.get('output_value')")


def test_check_a_pasted_script_and_restore_under_it(client: Client, tmp_path: Path):
    assert FIXED != FLOW and DIVERGING != FLOW
    api = TestClient(create_app(client, users=[]))
    execution_id = start_failing(client, tmp_path)
    check = f"/api/executions/{execution_id}/check"

    to_head = post(api, check, {"script": FIXED})
    assert to_head.status_code == 200, to_head.text
    report = to_head.json()
    assert report["compatible"] is False and report["newest_compatible"]["name"] == "before-check"
    assert report["text"] == client.check(execution_id, FIXED).describe()
    assert "incompatible" in report["text"] and "before-check" in report["text"]

    up_to = post(api, check, {"script": FIXED, "to": "before-check", "by": "name"}).json()
    assert up_to["compatible"] is True
    assert (
        up_to["text"].startswith("compatible up to savepoint #") and "before-check" in up_to["text"]
    )

    diverging = post(api, check, {"script": DIVERGING, "to": "before-check", "by": "name"}).json()
    assert diverging["compatible"] is False
    assert diverging["recorded_line"] == line_of(FLOW, "input_value")
    assert "input_value" in diverging["recorded"] and "output_value" in diverging["found"]

    restore = f"/api/executions/{execution_id}/restore"
    refused = post(api, restore, {"ref": "before-check", "by": "name", "script": DIVERGING})
    assert refused.status_code == 409
    path = write_flow(tmp_path, DIVERGING, "diverging")
    assert refused.json()["detail"] == _cli_refusal(
        "restore", execution_id, "before-check", "--by", "name", "--script", path
    )
    assert client.get(execution_id).status.value == "ENDED_ERROR"  # nothing changed

    restored = post(api, restore, {"ref": "before-check", "by": "name", "script": FIXED})
    assert restored.status_code == 200, restored.text
    handle = client.get(execution_id).wait(60)
    assert handle.status.value == "ENDED_SUCCESS" and handle.outputs == {"total": 30}
    assert handle.record().source == FIXED
    assert restored.json()["restored_under"] == client.check(execution_id, FIXED).script

    # Each savepoint's source is the script it ran under: the old one for the failed branch.
    savepoints = api.get(f"/api/executions/{execution_id}/savepoints").json()["items"]
    old, new = script_hash(FLOW), script_hash(FIXED)
    assert {sp["script"] for sp in savepoints} == {old, new}
    page = api.get(f"/executions/{execution_id}").text
    shown = json.loads(re.search(r'id="scripts-data">(.*?)</script>', page, re.S)[1])
    assert shown == {old: FLOW}
    assert client.script_sources({old, new, "0" * 12, "not-hex"}) == {old: FLOW, new: FIXED}


def test_check_and_restore_with_a_registered_flow_version(client: Client, tmp_path: Path):
    api = TestClient(create_app(client, users=[]))
    execution_id = start_failing(client, tmp_path)
    assert client.register_flow("shipping", write_flow(tmp_path, FLOW, "v1")) == 1
    assert client.register_flow("shipping", write_flow(tmp_path, FIXED, "v2")) == 2
    page = api.get(f"/executions/{execution_id}").text
    assert '<option value="shipping@2">' in page and '<option value="shipping@1">' in page
    assert page.index("shipping@2") < page.index("shipping@1")  # newest first
    assert 'id="fix-script"' in page

    check = f"/api/executions/{execution_id}/check"
    old = post(api, check, {"flow_version": "shipping@1"}).json()
    assert old["compatible"] is True  # the script it failed under replays its journal
    new = post(api, check, {"flow_version": "shipping@2", "to": "before-check", "by": "name"})
    assert new.json()["compatible"] is True
    missing = post(api, check, {"flow_version": "shipping@9"})
    assert missing.status_code == 404
    assert missing.json()["detail"] == _cli_refusal(
        "check", execution_id, "--flow-version", "shipping@9"
    )
    restored = post(
        api,
        f"/api/executions/{execution_id}/restore",
        {"ref": "before-check", "by": "name", "flow_version": "shipping@2"},
    )
    assert restored.status_code == 200, restored.text
    assert client.get(execution_id).wait(60).status.value == "ENDED_SUCCESS"


def test_bad_fix_requests_are_4xx_and_change_nothing(client: Client, tmp_path: Path):
    api = TestClient(create_app(client, users=[]))
    execution_id = start_failing(client, tmp_path)
    check = f"/api/executions/{execution_id}/check"
    restore = f"/api/executions/{execution_id}/restore"
    for body in (
        {},
        {"script": ""},
        {"script": FIXED, "flow_version": "shipping@1"},
        {"script": 5},
        {"flow_version": ""},
        {"script": FIXED, "by": "seq"},
    ):
        answer = post(api, check, body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["detail"]
    both = post(api, restore, {"ref": "before-check", "script": FIXED, "flow_version": "x@1"})
    assert both.status_code == 400 and "not both" in both.json()["detail"]
    unknown = post(api, check, {"script": FIXED, "to": "no-such", "by": "name"})
    assert unknown.status_code == 404 and "no-such" in unknown.json()["detail"]
    assert post(api, "/api/executions/not-an-id/check", {"script": FIXED}).status_code == 404
    # A pasted one-liner is source text, never the name of a file on the server to read.
    secret = tmp_path / "server-side.py"
    secret.write_text(FIXED)
    as_path = post(api, check, {"script": str(secret)}).json()
    assert as_path["compatible"] is False and "does not compile" in as_path["problem"]
    broken = post(api, check, {"script": FIXED.replace("):", ")", 1)}).json()
    assert broken["compatible"] is False and "does not compile" in broken["problem"]
    done = client.get(execution_id)
    assert done.status.value == "ENDED_ERROR" and done.record().source == FLOW

"""Defects an audit of issue 11's calls (connections, messages, locks, children, records)
reproduced through the user's entry points; each test failed before its fix and guards it now.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

from conftest import wait_until, write_flow
from test_cli import flowrt_process

import flowrt
from flowrt.status import Status

TYPED = "Hunter2-typed-S3cret"  # what an operator typed into a form's password field

ASKS_FOR_A_PASSWORD = """
import flow_api

FORM = {
    'type': 'object',
    'properties': {
        'user': {'element': 'string', 'type': 'string', 'order': 1},
        'password': {'element': 'password', 'type': 'string', 'order': 2},
    },
    'required': ['user', 'password'],
}

def handler(system, this):
    system.message(subject='Log in', message_type='POPUP', body=FORM).wait()
"""


def test_flowrt_messages_does_not_print_what_was_typed_into_a_password_field(
    flowrt_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    env = flowrt_env()
    client = flowrt.default_client()
    asking = client.start(write_flow(tmp_path, textwrap.dedent(ASKS_FOR_A_PASSWORD)))
    [message] = wait_until(asking.messages, 30, "the message")  # type: ignore[misc]
    asking.respond(message.id, {"user": "ann", "password": TYPED})
    assert asking.wait(30).status is Status.ENDED_SUCCESS
    shown = flowrt_process(env, "messages", "--execution", asking.id)
    listed = flowrt_process(env, "messages", "--execution", asking.id, "--json")
    assert shown.returncode == 0 and listed.returncode == 0, shown.stderr + listed.stderr
    assert "ann" in shown.stdout and json.loads(listed.stdout)[0]["response"]["user"] == "ann"
    assert TYPED not in shown.stdout + shown.stderr + listed.stdout + listed.stderr

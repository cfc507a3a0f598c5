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


def test_deleting_a_child_whose_message_another_execution_waits_for_strands_no_one(
    client: flowrt.Client, tmp_path: Path
) -> None:
    """A waiter for a message whose sender is deleted would wait for ever: no one can answer."""
    sender = textwrap.dedent(
        """
        import flow_api

        def handler(system, this):
            message = system.message(subject='Go?', body={'type': 'object'})
            this.save(output_value={'id': message.get('id')})
        """
    )
    waiter = textwrap.dedent(
        """
        import flow_api

        def handler(system, this):
            system.message(this.get('input_value')['message_id']).wait()
        """
    )
    client.register_flow("sender", write_flow(tmp_path, sender, "sender"))
    client.register_flow("waiter", write_flow(tmp_path, waiter, "waiter"))
    parent = client.start(
        write_flow(
            tmp_path,
            textwrap.dedent(
                """
                import flow_api

                def handler(system, this):
                    sent = this.flow('sender')
                    message_id = sent.get('output_value')['id']
                    this.flow('waiter', message_id=message_id, wait=False)
                    this.sleep(1)
                    try:
                        sent.delete()
                    except flow_api.FlowApiError as error:
                        return this.save(output_value={'refused': type(error).__name__})
                    this.save(output_value={'deleted': message_id})
                """
            ),
        )
    ).wait(60)
    assert parent.status is Status.ENDED_SUCCESS, parent.record().message
    [waiting] = [child for child in parent.children() if child.record().flow_name == "waiter"]
    if "deleted" in parent.outputs:  # then the waiter must not be left waiting for nothing
        assert wait_until(lambda: waiting.record().status.ended, 30, "the waiter to end")
    else:
        [message] = client.list_messages()
        client.respond(message.id, {})
        assert waiting.wait(30).status is Status.ENDED_SUCCESS

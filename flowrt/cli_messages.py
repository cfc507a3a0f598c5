"""`flowrt messages` and `flowrt respond`: see what executions ask people, and answer it."""

from __future__ import annotations

import json
from typing import Any

import click

from flowrt.client import default_client
from flowrt.forms import describe, example, shown_response
from flowrt.storage import MessageRecord


@click.command()
@click.option("--execution", "execution_id", help="All messages of this execution.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def messages(execution_id: str | None, as_json: bool) -> None:
    """List pending messages (or all of one execution), with the form each one asks for."""
    found = default_client().list_messages(execution_id)
    if as_json:
        click.echo(json.dumps([message_dict(m) for m in found], indent=2))
        return
    if not found:
        click.echo("no messages" if execution_id else "no pending messages")
    for message in found:
        click.echo(
            f"{message.id}  {message.status:<9}  {message.message_type:<7}  "
            f"execution {message.execution_id}  {_one_line(message.subject)}"
        )
        if message.responded_at is None:
            click.echo(f"    form: {describe(message.body)}")
            click.echo(f"    flowrt respond {message.id} --response '{example(message.body)}'")
        else:
            click.echo(
                f"    response: {json.dumps(shown_response(message.body, message.response))}"
            )


@click.command()
@click.argument("message_id")
@click.option(
    "--response", "raw", required=True, help="""The response, a JSON object: '{"ok": true}'."""
)
def respond(message_id: str, raw: str) -> None:
    """Respond to message MESSAGE_ID; the executions waiting for it go on."""
    try:
        response = json.loads(raw)
    except ValueError as error:
        raise click.BadParameter(
            f'not JSON ({error}); give a JSON object, e.g. \'{{"name": "x"}}\'',
            param_hint="--response",
        ) from None
    message = default_client().respond(message_id, response)
    click.echo(f"responded to message {message.id} of execution {message.execution_id}")


def message_dict(message: MessageRecord) -> dict[str, Any]:
    """A message as JSON: its fields, status and form, times as ISO 8601."""
    return {
        "id": message.id,
        "execution_id": message.execution_id,
        "subject": message.subject,
        "message_type": message.message_type,
        "status": message.status,
        "body": message.body,
        "response": shown_response(message.body, message.response),
        "created_at": message.created_at.isoformat(),
        "responded_at": message.responded_at.isoformat() if message.responded_at else None,
    }


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 120 else line[:119] + "…"

"""What the `flowrt` command's modules share: the client, KEY=VALUE options and JSON output."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from flowrt.client import Client, default_client
from flowrt.connectors.masking import mask_config


def client() -> Client:
    """The client of this process (`flowrt.default_client()`)."""
    return default_client()


def parse_inputs(pairs: tuple[str, ...]) -> dict[str, Any]:
    """KEY=VALUE options as a dict; a VALUE that is JSON is read as JSON, else as text."""
    inputs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--input")
        try:
            inputs[key] = json.loads(raw)
        except ValueError:
            inputs[key] = raw
    return inputs


def json_default(value: Any) -> Any:
    """How `echo_json` writes what JSON has no type for: times ISO, bytes in hex."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def echo_json(value: Any) -> None:
    """Print `value` as indented JSON."""
    click.echo(json.dumps(value, default=json_default, indent=2))


def list_named(kind: str, as_json: bool) -> None:
    """Print the records of `kind` (a connector's credentials masked)."""
    rows = client().list_named(kind)
    shown = {r.name: mask_config(r.value) if kind == "connector" else r.value for r in rows}
    if as_json:
        echo_json(
            [{"name": r.name, "value": shown[r.name], "updated_at": r.updated_at} for r in rows]
        )
        return
    for r in rows:
        value = shown[r.name] if kind != "flow" else f"{len(r.value['source'])} characters"
        click.echo(f"{r.name:<24} {json.dumps(value, default=json_default)}")


def delete_named(kind: str, name: str) -> None:
    """Delete the record `name` of `kind`, or fail saying there is none."""
    if not client().delete_named(kind, name):
        raise click.ClickException(f"no {kind} named {name!r}")
    click.echo(f"{kind} {name} deleted")

"""`flowrt connector`: configure the connectors flows call by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from flowrt.cli_common import client, delete_named, list_named, parse_inputs
from flowrt.connectors.base import connector_types


@click.group()
def connector() -> None:
    """Configure connectors."""


@connector.command("set")
@click.argument("name")
@click.option(
    "--type",
    "type_",
    type=click.Choice(sorted(connector_types()), case_sensitive=False),
    required=True,
)
@click.option("--url", help="sql: SQLAlchemy URL.")
@click.option("--base-url", help="rest: base URL.")
@click.option("--header", "headers", multiple=True, help="rest: KEY=VALUE sent on every call.")
@click.option("--timeout", "timeout_s", type=float, help="rest: seconds per call.")
@click.option(
    "--set",
    "fields",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any field of the type (git, ssh, scp: hostname=..., port=22); VALUE is JSON or text.",
)
@click.option(
    "--set-file",
    "file_fields",
    multiple=True,
    metavar="KEY=PATH",
    help="A field read from a file (its last line break dropped): key=~/.ssh/id_ed25519.",
)
def connector_set(
    name: str,
    type_: str,
    url: str | None,
    base_url: str | None,
    headers: tuple[str, ...],
    timeout_s: float | None,
    fields: tuple[str, ...],
    file_fields: tuple[str, ...],
) -> None:
    """Create or replace connector NAME."""
    options: dict[str, Any] = {"url": url, "base_url": base_url, "timeout_s": timeout_s}
    if headers:
        options["headers"] = {k: str(v) for k, v in parse_inputs(headers).items()}
    options |= parse_inputs(fields)
    for key, path in (pair.partition("=")[::2] for pair in file_fields):
        try:
            options[key] = Path(path).expanduser().read_text().rstrip("\r\n")
        except (OSError, ValueError) as error:
            hint = "--set-file"
            raise click.BadParameter(f"cannot read {path!r}: {error}", param_hint=hint) from None
    client().set_connector(name, type_, **{k: v for k, v in options.items() if v is not None})
    click.echo(f"connector {name} ({type_}) saved")


@connector.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def connector_list(as_json: bool) -> None:
    """List connectors."""
    list_named("connector", as_json)


@connector.command("delete")
@click.argument("name")
def connector_delete(name: str) -> None:
    """Delete connector NAME."""
    delete_named("connector", name)

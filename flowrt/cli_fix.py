"""`flowrt check` and `flowrt upgrade`: try a corrected script against an execution's journal,
and move a live execution onto it; and which script each savepoint ran under, for `show`."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

import click

from flowrt.client import Client, Handle, default_client
from flowrt.script import FLOW, script_hash
from flowrt.storage import SavepointRecord

SCRIPT_HELP = "The corrected flow: a .py file, or the name of a registered flow."


@click.command("check")
@click.argument("execution_id")
@click.option("--script", "script", required=True, help=SCRIPT_HELP)
@click.option("--to", "ref", default=None, help="Check up to this savepoint (default: the head).")
@click.option("--by", type=click.Choice(["id", "name"]), default="id", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def check(execution_id: str, script: str, ref: str | None, by: str, as_json: bool) -> None:
    """Replay SCRIPT against EXECUTION_ID's journal, performing nothing.

    Exits 0 if SCRIPT makes the recorded calls up to the savepoint (name and arguments, in
    order), else prints the first difference and the newest compatible savepoint, exits 1.
    """
    report = default_client().check(execution_id, script, ref, by)
    if as_json:
        click.echo(json.dumps(asdict(report), indent=2))
    else:
        click.echo(report.describe())
    sys.exit(0 if report.compatible else 1)


@click.command("upgrade")
@click.argument("execution_id")
@click.option("--script", "script", required=True, help=SCRIPT_HELP)
def upgrade(execution_id: str, script: str) -> None:
    """Move a RUNNING, WAITING or PAUSED execution onto SCRIPT at its newest savepoint.

    SCRIPT is checked against the journal first and refused if it does not replay it. The
    execution's next step, on whichever worker, runs the new script.
    """
    client = default_client()
    handle = client.get(execution_id).upgrade(script)
    record = handle.record()
    label = script_label(client, record.flow_name, script_hash(record.source))
    click.echo(f"upgraded {execution_id} to script {label}; it stays {record.status.value}")


def script_label(client: Client, flow_name: str, digest: str | None) -> str:
    """A script's short hash, naming the registered flow too when it holds that script now."""
    if digest is None:
        return "the execution's first script (made before schema 0012)"
    registered = client.store.get_named(FLOW, flow_name)
    source = registered.value.get("source") if registered is not None else None
    if isinstance(source, str) and script_hash(source) == digest:
        return f"{digest} (flow {flow_name} as registered now)"
    return digest


def savepoint_scripts(handle: Handle, rows: list[SavepointRecord]) -> list[str]:
    """For `flowrt show`: which savepoints ran under which script, in runs of one script."""
    client, record = handle.client, handle.record()
    runs: list[tuple[str | None, int, int]] = []
    for sp in sorted(rows, key=lambda row: (row.created_at, row.seq)):
        if runs and runs[-1][0] == sp.script:
            runs[-1] = (sp.script, runs[-1][1], sp.seq)
        else:
            runs.append((sp.script, sp.seq, sp.seq))
    lines = []
    for digest, first, last in runs:
        span = f"#{first}" if first == last else f"#{first}-#{last}"
        lines.append(f"{span} under {script_label(client, record.flow_name, digest)}")
    return lines

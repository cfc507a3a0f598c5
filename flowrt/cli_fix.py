"""`flowrt check` and `flowrt upgrade`: try a corrected script against an execution's journal,
and move a live execution onto it; and which script each savepoint ran under, for `show`."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import click

from flowrt.client import Client, Handle, default_client
from flowrt.script import FLOW, script_hash
from flowrt.status import Status
from flowrt.storage import SavepointRecord
from flowrt.upgrade import LATEST_COMPATIBLE

SCRIPT_HELP = "The corrected flow: a .py file, or the name of a registered flow."
VERSION_HELP = "The corrected flow: version N of registered flow NAME (instead of --script)."


def flow_version_option(required: bool) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Add `--flow-version NAME@N`, handed to the command as its `script` (the source text)."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(command)
        def wrapped(*args: Any, flow_version: str | None = None, **kwargs: Any) -> None:
            if flow_version is not None and kwargs.get("script") is not None:
                raise click.UsageError("give --script FILE or --flow-version NAME@N, not both")
            if flow_version is not None:
                kwargs["script"] = default_client().flow_version(flow_version)
            elif required and kwargs.get("script") is None:
                raise click.UsageError(
                    "give the corrected flow: --script FILE or --flow-version NAME@N"
                )
            command(*args, **kwargs)

        return click.option("--flow-version", "flow_version", default=None, help=VERSION_HELP)(
            wrapped
        )

    return decorate


@click.command("check")
@click.argument("execution_id")
@click.option("--script", "script", default=None, help=SCRIPT_HELP)
@click.option("--to", "ref", default=None, help="Check up to this savepoint (default: the head).")
@click.option("--by", type=click.Choice(["id", "name"]), default="id", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@flow_version_option(required=True)
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
@click.option("--script", "script", default=None, help=SCRIPT_HELP)
@flow_version_option(required=True)
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
    """A script's short hash, naming the registered flow's version too where it is one."""
    if digest is None:
        return "the execution's first script (made before schema 0012)"
    registered = client.store.get_named(FLOW, flow_name)
    source = registered.value.get("source") if registered is not None else None
    now = ", as registered now" if isinstance(source, str) and script_hash(source) == digest else ""
    for version in client.flow_versions(flow_name):
        if version.hash == digest:
            return f"{digest} (flow {flow_name} version {version.number}{now})"
    return f"{digest} (flow {flow_name} as registered now)" if now else digest


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


def bulk_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options of `flowrt restore` without an EXECUTION_ID: restore many at once."""
    options = [
        click.option(
            "--status",
            type=click.Choice([s.value for s in Status]),
            default=None,
            help="Many: restore the executions with this status.",
        ),
        click.option("--flow", "flow_name", default=None, help="Many: of this flow only."),
        click.option(
            "--to",
            "to",
            default=None,
            help=f"Many: a savepoint name, or {LATEST_COMPATIBLE} (each one's newest fit).",
        ),
        click.option("--limit", default=1000, show_default=True, help="Many: at most this many."),
        click.option("--dry-run", is_flag=True, help="Many: check and print, change nothing."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def restore_many(
    execution_id: str | None,
    ref: str | None,
    script: str | None,
    *,
    status: str | None,
    flow_name: str | None,
    to: str | None,
    limit: int,
    dry_run: bool,
) -> None:
    """`flowrt restore --status S --flow NAME --script FILE --to REF`: check each execution
    that matches, restore the ones FILE fits, and print a table of what was done and why."""
    if execution_id is not None:
        raise click.UsageError("give REF too, or leave out EXECUTION_ID to restore many")
    if status is None and flow_name is None:
        raise click.UsageError("give EXECUTION_ID REF, or --status/--flow to restore many")
    if status is None or flow_name is None:  # another flow's, or running ones, rewound
        raise click.UsageError(
            "restoring many needs both --status (say ENDED_ERROR) and --flow NAME: the script "
            "is one flow's fix, and executions that still run are not to be rewound"
        )
    if script is None or to is None:
        raise click.UsageError(
            f"restoring many needs --script FILE and --to (name or {LATEST_COMPATIBLE})"
        )
    client = default_client()
    source = client.script_source(script)
    records = client.store.list_executions(limit, Status(status), flow_name=flow_name)
    if not dry_run and client.settings.embedded_broker:
        client.ensure_worker()
    rows = client.runtime.restore_many(records, source, to, dry_run)
    if not dry_run and client.settings.embedded_broker:  # they run in this process: wait
        for row in rows:
            if row.restored:
                client.get(row.execution_id).wait(3600)
    click.echo(f"{'EXECUTION':<36}  {'DONE':<9} {'SAVEPOINT':<24} WHY")
    for row in rows:
        done = "restored" if row.restored else ("would" if row.savepoint else "skipped")
        savepoint = str(row.savepoint) if row.savepoint else "-"
        click.echo(f"{row.execution_id:<36}  {done:<9} {savepoint:<24} {row.reason}")
    restored = sum(row.restored or bool(row.savepoint) for row in rows)
    verb = "would restore" if dry_run else "restored"
    click.echo(f"{verb} {restored} of {len(rows)} executions; skipped {len(rows) - restored}")
    sys.exit(0 if restored == len(rows) else 1)


def refuse_bulk_options(bulk: dict[str, Any]) -> None:
    """A restore of one execution takes none of the options of a restore of many."""
    given = [f"--{name.replace('_name', '').replace('_', '-')}" for name, v in bulk.items() if v]
    given = [name for name in given if name != "--limit"]
    if given:
        raise click.UsageError(
            f"{', '.join(given)} select many executions: leave out EXECUTION_ID REF to use them"
        )

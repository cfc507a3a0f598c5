"""The `flowrt` command: run and start flows, list executions and savepoints, restore them."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from typing import Any

import click

from config import SettingsError
from flowrt import cli_fix
from flowrt.cli_common import client as _client
from flowrt.cli_common import echo_json as _echo_json
from flowrt.cli_common import json_default as _json_default
from flowrt.cli_common import list_named
from flowrt.cli_common import parse_inputs as _parse_inputs
from flowrt.cli_connectors import connector
from flowrt.cli_messages import messages, respond
from flowrt.cli_stats import stats
from flowrt.cli_web import web
from flowrt.client import Handle, shutdown
from flowrt.embedded import pin_hash_seed
from flowrt.errors import FlowNotFoundError, FlowrtError
from flowrt.script import FLOW, script_hash
from flowrt.status import Status
from flowrt.storage import SavepointRecord


def main() -> None:
    """Entry point: run the CLI, turning flowrt errors into one clear line and exit code 2."""
    pin_hash_seed()  # flows it runs replay alike in any `flowrt` process
    try:
        cli(standalone_mode=True)
    except (FlowrtError, SettingsError) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


_HIDDEN = ("answer", "digest", "signature")  # blobs and signatures are not for people


def _savepoint_line(sp: SavepointRecord) -> str:
    name = f"  name={sp.name}" if sp.name else ""
    restored = f"  restored={sp.restored}" if sp.restored else ""
    script = f"  script={sp.script}" if sp.script else ""
    return f"#{sp.seq:<5} {sp.call:<14} line {sp.line:<5}{name}{restored}{script}"


@click.group()
def cli() -> None:
    """Durable executions with restorable savepoints.

    Settings come from FLOWRT_* variables (FLOWRT_DATABASE_URL, FLOWRT_BROKER_URL, ...).
    """


# --- running ---------------------------------------------------------------------------------


@cli.command()
@click.argument("flow")
@click.option(
    "--input", "-i", "pairs", multiple=True, help="KEY=VALUE (VALUE parsed as JSON if it can be)."
)
@click.option(
    "--timeout", "timeout_s", default=3600.0, show_default=True, help="Seconds to wait for the end."
)
@click.option("--name", help="A name for the execution (default: the flow's name).")
def run(flow: str, pairs: tuple[str, ...], timeout_s: float, name: str | None) -> None:
    """Run FLOW (file or registered name) with an in-process worker, printing its savepoints.

    Exits 0 only when the execution ends ENDED_SUCCESS.
    """
    client = _client()
    client.ensure_worker()
    handle = client.start(flow, _parse_inputs(pairs), name)
    click.echo(f"execution {handle.id}")
    seen: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while True:
        record = handle.record()
        for sp in handle.savepoints():
            if sp.id not in seen:
                seen.add(sp.id)
                click.echo(f"  savepoint {_savepoint_line(sp)}")
        if record.status.ended:
            break
        if time.monotonic() > deadline:
            click.echo(f"still {record.status.value} after {timeout_s} s", err=True)
            sys.exit(1)
        time.sleep(0.02)
    _print_end(handle)
    shutdown()
    sys.exit(0 if record.status is Status.ENDED_SUCCESS else 1)


def _print_end(handle: Handle) -> None:
    record = handle.record()
    click.echo(f"status   {record.status.value}")
    if record.message:
        click.echo(f"message  {record.message}")
    click.echo(f"outputs  {json.dumps(record.outputs, default=_json_default)}")
    if record.error and record.status is Status.ENDED_ERROR:
        click.echo(record.error.rstrip(), err=True)


@cli.command()
@click.argument("flow")
@click.option(
    "--input", "-i", "pairs", multiple=True, help="KEY=VALUE (VALUE parsed as JSON if it can be)."
)
@click.option("--name", help="A name for the execution (default: the flow's name).")
def start(flow: str, pairs: tuple[str, ...], name: str | None) -> None:
    """Enqueue FLOW on the configured broker for the workers; print the execution id."""
    client = _client()
    if client.settings.embedded_broker:
        raise click.UsageError(
            "FLOWRT_BROKER_URL is memory:// (in-process), so no worker could take this "
            "execution; set FLOWRT_BROKER_URL=redis://... or use `flowrt run`"
        )
    click.echo(client.start(flow, _parse_inputs(pairs), name).id)


# --- looking -----------------------------------------------------------------------------------


@cli.command()
@click.option("--status", type=click.Choice([s.value for s in Status]), default=None)
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def executions(status: str | None, limit: int, as_json: bool) -> None:
    """List executions, newest first."""
    records = _client().list_executions(limit, Status(status) if status else None)
    if as_json:
        _echo_json([_execution_dict(r) for r in records])
        return
    for r in records:
        shown = r.flow_name if r.display_name == r.flow_name else f"{r.name} ({r.flow_name})"
        click.echo(f"{r.id}  {r.status.value:<15} {shown:<20} {r.created_at:%Y-%m-%d %H:%M:%S}")


def _execution_dict(record: Any) -> dict[str, Any]:
    data = asdict(record)
    data["script"] = script_hash(data.pop("source"))
    data.pop("signature", None)
    data["status"] = record.status.value
    data["name"] = record.display_name  # its own name, else its flow's
    return data


@cli.command()
@click.argument("execution_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(execution_id: str, as_json: bool) -> None:
    """Show one execution: status, outputs, where it is loaded, its error."""
    handle = _client().get(execution_id)
    record = handle.record()
    data = _execution_dict(record)
    if as_json:
        _echo_json(data)
        return
    data["savepoints"] = "; ".join(cli_fix.savepoint_scripts(handle, handle.savepoints())) or None
    if data["worker"] is None:
        data["worker"] = "none (not loaded in any worker)"
    for key, value in data.items():
        if key == "error" and value:
            click.echo("error    |\n" + "\n".join("  " + line for line in str(value).splitlines()))
        elif value is not None:
            shown = json.dumps(value, default=_json_default) if isinstance(value, dict) else value
            click.echo(f"{key:<12} {shown}")


@cli.command()
@click.argument("execution_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def savepoints(execution_id: str, as_json: bool) -> None:
    """List an execution's savepoints with the variables at each."""
    handle = _client().get(execution_id)
    head = handle.record().head_id
    rows = handle.savepoints()
    if as_json:
        _echo_json(
            [
                {
                    **{k: v for k, v in asdict(sp).items() if k not in _HIDDEN},
                    "head": sp.id == head,
                }
                for sp in rows
            ]
        )
        return
    if not rows:
        click.echo("no savepoints (archived, or not started yet)")
    for sp in rows:
        mark = "*" if sp.id == head else " "
        click.echo(f"{mark}{_savepoint_line(sp)}  {sp.created_at:%H:%M:%S.%f}  {sp.id}")
        for key, value in (sp.variables or {}).items():
            click.echo(f"        {key} = {value}")


@cli.command()
@click.argument("execution_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def logs(execution_id: str, as_json: bool) -> None:
    """Print an execution's log."""
    rows = _client().get(execution_id).logs()
    if as_json:
        _echo_json([asdict(r) for r in rows])
        return
    for r in rows:
        click.echo(f"{r.created_at:%H:%M:%S}  #{r.seq:<5} line {r.line:<4} {r.message}")


# --- changing -----------------------------------------------------------------------------------


@cli.command()
@click.argument("execution_id", required=False)
@click.argument("ref", required=False)
@click.option("--by", type=click.Choice(["id", "name"]), default="id", show_default=True)
@click.option("--script", default=None, help="Go on under this corrected flow, once checked.")
@click.option(
    "--wait/--no-wait", default=None, help="Wait for the end (default: only on memory://)."
)
@cli_fix.bulk_options
@cli_fix.flow_version_option(required=False)
def restore(
    execution_id: str | None,
    ref: str | None,
    by: str,
    script: str | None,
    wait: bool | None,
    **bulk: Any,
) -> None:
    """Restore EXECUTION_ID to savepoint REF and let it run again from there.

    With --script, the script is checked against the journal up to REF first (as `flowrt
    check` does) and the restore refused if it differs. A PAUSED execution stays paused at
    REF until `flowrt resume`. With --wait, exits as `run` does: 0 only when the execution
    ends ENDED_SUCCESS, 1 otherwise. Without EXECUTION_ID, restores many (--status, --flow).
    """
    if execution_id is None or ref is None:
        cli_fix.restore_many(execution_id, ref, script, **bulk)
        return
    cli_fix.refuse_bulk_options(bulk)
    client = _client()
    handle = client.get(execution_id).restore(ref, by, script)
    click.echo(f"restored {execution_id} to {by} {ref}")
    if handle.status is Status.PAUSED:
        click.echo(f"it stays PAUSED there until `flowrt resume {execution_id}`")
        return
    if wait if wait is not None else client.settings.embedded_broker:
        handle.wait(3600)
        _print_end(handle)
        sys.exit(0 if handle.status is Status.ENDED_SUCCESS else 1)


@cli.command()
@click.argument("execution_id")
def pause(execution_id: str) -> None:
    """Pause a running or waiting execution until `flowrt resume`."""
    _client().get(execution_id).pause()
    click.echo(f"paused {execution_id}")


@cli.command()
@click.argument("execution_id")
@click.option(
    "--wait/--no-wait", default=None, help="Wait for the end (default: only on memory://)."
)
def resume(execution_id: str, wait: bool | None) -> None:
    """Let a paused execution go on from its newest savepoint.

    With --wait, exits as `run` does: 0 only when the execution ends ENDED_SUCCESS, 1 otherwise.
    """
    client = _client()
    handle = client.get(execution_id).resume()
    click.echo(f"resumed {execution_id}")
    if wait if wait is not None else client.settings.embedded_broker:
        handle.wait(3600)
        _print_end(handle)
        sys.exit(0 if handle.status is Status.ENDED_SUCCESS else 1)


@cli.command()
@click.argument("execution_id")
def cancel(execution_id: str) -> None:
    """End an execution ENDED_CANCELLED, with its children that have not ended."""
    client = _client()
    cancelled = client.runtime.cancel(client.get(execution_id).id)
    children = len(cancelled) - 1
    click.echo(
        f"cancelled {execution_id}" + (f" and {children} child executions" if children else "")
    )


@cli.command()
@click.argument("execution_id")
def archive(execution_id: str) -> None:
    """Delete an ended execution's savepoints (status, outputs and logs stay)."""
    _client().get(execution_id).archive()
    click.echo(f"archived {execution_id}")


# --- named objects -----------------------------------------------------------------------------


@cli.group()
def flow() -> None:
    """Register flows by name."""


@flow.command("set")
@click.argument("name")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def flow_set(name: str, path: str) -> None:
    """Store the flow file PATH as NAME."""
    number = _client().register_flow(name, path)
    click.echo(f"flow {name} saved (version {number})")


@flow.command("versions")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def flow_versions(name: str, as_json: bool) -> None:
    """List the versions of registered flow NAME, for `--flow-version NAME@N`."""
    client = _client()
    versions = client.flow_versions(name)
    if not versions:
        raise FlowNotFoundError(name)
    record = client.store.get_named(FLOW, name)
    registered = record.value.get("source") if record is not None else None
    rows = [
        {
            "version": v.number,
            "script": v.hash,
            "characters": len(v.source),
            "saved_at": v.saved_at,
            "current": v.source == registered,
        }
        for v in versions
    ]
    if as_json:
        _echo_json(rows)
        return
    for row in rows:
        current = "  (registered now)" if row["current"] else ""
        click.echo(
            f"{name}@{row['version']:<5} script={row['script']}  {row['characters']} characters"
            f"  saved {row['saved_at']:%Y-%m-%d %H:%M:%S}{current}"
        )


@flow.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def flow_list(as_json: bool) -> None:
    """List registered flows."""
    list_named("flow", as_json)


@cli.group()
def setting() -> None:
    """Read and write settings."""


@setting.command("set")
@click.argument("name")
@click.argument("value")
def setting_set(name: str, value: str) -> None:
    """Set NAME to VALUE (parsed as JSON if it can be)."""
    _client().set_setting(name, _parse_inputs((f"v={value}",))["v"])
    click.echo(f"setting {name} saved")


@setting.command("get")
@click.argument("name")
def setting_get(name: str) -> None:
    """Print the value of setting NAME as JSON."""
    click.echo(json.dumps(_client().get_setting(name)))


@setting.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def setting_list(as_json: bool) -> None:
    """List settings."""
    list_named("setting", as_json)


@cli.group()
def db() -> None:
    """Manage the database schema."""


@db.command()
def upgrade() -> None:
    """Create or migrate the schema of FLOWRT_DATABASE_URL to this version."""
    from config import load
    from flowrt.storage import migrate
    from flowrt.storage.sql import create_engine

    engine = create_engine(load().database_url)
    migrate.upgrade(engine)
    click.echo(f"database at revision {migrate.current_revision(engine)}")
    engine.dispose()


@db.command()
def resign() -> None:
    """Sign the rows written before schema 0004 (trusted database only; see README)."""
    from flowrt.resign import resign as resign_rows

    client = _client()
    settings = client.settings
    report = resign_rows(client.store.engine, client.runtime.journal.signer, settings.secrets)
    click.echo(
        f"signed {report.executions} executions, {report.savepoints} savepoints and "
        f"{report.flows} registered flows; {report.refused} savepoints refused (their blobs "
        "match no key of FLOWRT_SECRET)"
    )


cli.add_command(stats)
cli.add_command(cli_fix.check)
cli.add_command(cli_fix.upgrade)
cli.add_command(connector)
cli.add_command(messages)
cli.add_command(respond)
cli.add_command(web)

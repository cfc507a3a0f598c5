"""`flowrt stats`: the backlog an operator or an exporter watches, as text, JSON or Prometheus."""

from __future__ import annotations

import json

import click

from flowrt.client import default_client
from flowrt.storage.backlog import Backlog

# name, help: the gauges of the Prometheus text format, one series each but the last,
# which has one per worker node holding executions (bounded by the workers running).
GAUGES = {
    "runnable": "Executions RUNNING, or WAITING with their wake-up due (what KEDA scales on).",
    "waiting": "Executions WAITING and not due: sleeping, or waiting for children.",
    "live": "Executions a worker holds: loaded in its memory, or stepping there.",
}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--prometheus", is_flag=True, help="Print Prometheus text exposition format.")
def stats(as_json: bool, prometheus: bool) -> None:
    """Runnable and waiting executions, and live executions per worker."""
    found = default_client().backlog()
    if as_json:
        click.echo(json.dumps(as_dict(found), indent=2))
    elif prometheus:
        click.echo(prometheus_text(found), nl=False)
    else:
        click.echo(f"runnable  {found.runnable:>8}   RUNNING, or WAITING and due")
        click.echo(f"waiting   {found.waiting:>8}   sleeping, or waiting for children")
        for worker, count in found.live.items():
            click.echo(f"live      {count:>8}   on {worker}")


def as_dict(found: Backlog) -> dict[str, object]:
    """The JSON form: counts, live executions by worker, and when they were measured."""
    return {
        "measured_at": found.measured_at.isoformat(),
        "runnable": found.runnable,
        "waiting": found.waiting,
        "live": found.live,
    }


def prometheus_text(found: Backlog) -> str:
    """The gauges `flowrt_runnable_executions`, `..._waiting_...` and `..._live_...{worker}`."""
    lines = []
    for name, help_text in GAUGES.items():
        metric = f"flowrt_{name}_executions"
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge"]
        if name != "live":
            lines.append(f"{metric} {getattr(found, name)}")
        for worker, count in found.live.items() if name == "live" else ():
            lines.append(f'{metric}{{worker="{_label(worker)}"}} {count}')
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

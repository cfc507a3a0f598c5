"""`flowrt stats`: runnable, waiting and live executions, counted from rows put there directly."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from flowrt.cli import cli
from flowrt.storage import SqlStore, open_store
from flowrt.storage.backlog import measure
from flowrt.storage.schema import executions

NOW = datetime.now(UTC)
LATER, EARLIER = NOW + timedelta(hours=1), NOW - timedelta(seconds=5)


def row(status: str, **values: Any) -> dict[str, Any]:
    """An `executions` row of `status`, as the reaper and the workers would find it."""
    base = {
        "id": str(uuid.uuid4()),
        "flow_name": "f",
        "source": "",
        "status": status,
        "version": 0,
        "inputs": {},
        "outputs": {},
        "created_at": NOW,
        "updated_at": NOW,
        "worker": None,
        "wake_at": None,
        "lease_until": None,
        "ended_at": None,
    }
    return {**base, **values}


# 3 runnable (2 running, 1 due sleep), 4 waiting (3 sleeping, 1 parent), 3 held.
ROWS = [
    row("RUNNING", worker="w1@a", lease_until=LATER),
    row("RUNNING", worker="w1@a", lease_until=LATER),
    row("WAITING", wake_at=EARLIER),
    *(row("WAITING", wake_at=LATER) for _ in range(3)),
    row("WAITING", worker='w"2', lease_until=LATER),
    row("PAUSED"),
    row("ENDED_SUCCESS", ended_at=EARLIER),
    row("ENDED_ERROR", ended_at=EARLIER),
]


def fill(store: SqlStore) -> None:
    with store.engine.begin() as conn:
        conn.execute(executions.insert(), ROWS)


def test_the_backlog_counts_running_and_due_as_runnable_and_nothing_ended_or_paused(store):
    fill(store)
    found = measure(store.engine, datetime.now(UTC))
    assert (found.runnable, found.waiting) == (3, 4)
    assert found.live == {"w1@a": 2, 'w"2': 1}


def test_an_empty_database_has_no_backlog_and_no_worker_series(store):
    found = measure(store.engine, datetime.now(UTC))
    assert (found.runnable, found.waiting, found.live) == (0, 0, {})


@pytest.fixture
def filled_env(flowrt_env: Callable[..., dict[str, str]]) -> dict[str, str]:
    env = flowrt_env()
    opened = open_store(env["FLOWRT_DATABASE_URL"])
    fill(opened)
    opened.close()
    return env


def test_flowrt_stats_json_prints_the_counts_and_live_executions_per_worker(filled_env):
    result = CliRunner().invoke(cli, ["stats", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert (found["runnable"], found["waiting"]) == (3, 4)
    assert found["live"] == {"w1@a": 2, 'w"2': 1}


def test_flowrt_stats_prometheus_prints_gauges_with_one_label_escaped_per_worker(filled_env):
    result = CliRunner().invoke(cli, ["stats", "--prometheus"])
    assert result.exit_code == 0, result.output
    samples = [line for line in result.output.splitlines() if not line.startswith("#")]
    assert samples == [
        "flowrt_runnable_executions 3",
        "flowrt_waiting_executions 4",
        'flowrt_live_executions{worker="w\\"2"} 1',  # by worker name: '"' sorts before '1'
        'flowrt_live_executions{worker="w1@a"} 2',
    ]
    assert "# TYPE flowrt_live_executions gauge" in result.output


def test_flowrt_stats_as_text_names_each_count(filled_env):
    result = CliRunner().invoke(cli, ["stats"])
    assert result.exit_code == 0, result.output
    assert result.output.split()[:2] == ["runnable", "3"]
    assert "on w1@a" in result.output

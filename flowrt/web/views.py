"""Executions, savepoints and logs as the JSON the API answers and the pages render."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi.encoders import jsonable_encoder

from flowrt.script import script_hash
from flowrt.storage import ExecutionRecord, LogRecord, SavepointRecord

# Stored fields people are not shown: signatures and blobs (as `flowrt show` leaves them out).
_HIDDEN = ("signature", "source")


def execution_json(record: ExecutionRecord, head: SavepointRecord | None = None) -> dict[str, Any]:
    """An execution as `flowrt show --json` prints it, with its head savepoint if given."""
    data = {
        name: getattr(record, name) for name in record.__dataclass_fields__ if name not in _HIDDEN
    }
    data["script"] = script_hash(record.source)
    data["status"] = record.status.value
    data["name"] = record.display_name
    data["ended"] = record.status.ended
    if head is not None:
        data["last_savepoint"] = {"call": head.call, "line": head.line, "name": head.name}
    return jsonable_encoder(data)


def savepoint_json(sp: SavepointRecord, head_id: str | None, branch: set[str]) -> dict[str, Any]:
    """A savepoint as `flowrt savepoints --json` prints it, and whether it is on the branch the
    execution goes on from (`current`)."""
    return jsonable_encoder(
        {
            "seq": sp.seq,
            "id": sp.id,
            "parent_id": sp.parent_id,
            "name": sp.name,
            "call": sp.call,
            "line": sp.line,
            "created_at": sp.created_at,
            "restored": sp.restored,
            "script": sp.script,
            "variables": sp.variables,
            "head": sp.id == head_id,
            "current": sp.id in branch,
        }
    )


def flower_search(flower_url: str, execution_id: str) -> str | None:
    """The URL of Flower's task search for the steps of `execution_id` (their arguments are
    `(execution='ID', version=N)`), or None when no Flower URL is configured."""
    if not flower_url:
        return None
    return f"{flower_url}/api/tasks?search={quote(f'args:{execution_id}', safe='')}"


def log_json(log: LogRecord) -> dict[str, Any]:
    """A log line as `flowrt logs --json` prints it."""
    return jsonable_encoder(
        {"seq": log.seq, "line": log.line, "created_at": log.created_at, "message": log.message}
    )


def interleave(
    savepoints: list[SavepointRecord], logs: list[LogRecord]
) -> dict[str, list[LogRecord]]:
    """The log lines of each savepoint (by id): those written at its seq after it was made,
    before the next savepoint of that seq was. Lines of savepoints not given are left out."""
    by_seq: dict[int, list[SavepointRecord]] = {}
    for sp in sorted(savepoints, key=lambda sp: sp.created_at):
        by_seq.setdefault(sp.seq, []).append(sp)
    owned: dict[str, list[LogRecord]] = {sp.id: [] for sp in savepoints}
    for log in logs:
        owner = None
        for sp in by_seq.get(log.seq, []):
            if sp.created_at > log.created_at:
                break
            owner = sp
        if owner is not None:
            owned[owner.id].append(log)
    return owned

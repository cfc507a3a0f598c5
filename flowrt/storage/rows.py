"""Rows to records and back: how each stored table maps onto its record class."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flowrt.status import Status
from flowrt.storage.base import ExecutionRecord, NamedRecord, SavepointRecord

log = logging.getLogger("flowrt")


def is_uuid(text: str) -> bool:
    """True if `text` can be an id of ours (ids are UUIDs; anything else matches no row)."""
    try:
        uuid.UUID(str(text))
    except ValueError:
        return False
    return True


def execution_record(row: Any, source: str) -> ExecutionRecord:
    """The record of an `executions` row whose source's text is `source` (see scripts.py)."""
    return ExecutionRecord(
        id=row.id,
        flow_name=row.flow_name,
        source=source,
        status=_status(row.id, row.status),
        version=row.version,
        head_id=row.head_id,
        inputs=row.inputs,
        outputs=row.outputs,
        message=row.message,
        error=row.error,
        error_line=row.error_line,
        worker=row.worker,
        wake_at=row.wake_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        ended_at=row.ended_at,
        archived_at=row.archived_at,
        lease_until=row.lease_until,
        parent_id=row.parent_id,
        crashes=row.crashes,
        suspect_on=row.suspect_on,
        signature=_bytes(row.signature),
        name=row.name,
        waits_on=row.waits_on,
    )


def savepoint_record(row: Any) -> SavepointRecord:
    """The record of a `savepoints` row."""
    return SavepointRecord(
        id=row.id,
        execution_id=row.execution_id,
        seq=row.seq,
        parent_id=row.parent_id,
        call=row.call,
        line=row.line,
        name=row.name,
        created_at=row.created_at,
        digest=bytes(row.digest),
        answer=bytes(row.answer) if row.answer is not None else None,
        restored=row.restored,
        variables=row.variables,
        reads=_bytes(row.reads),
        signature=_bytes(row.signature),
        script=row.script,
    )


def savepoint_row(record: SavepointRecord) -> dict[str, Any]:
    """The `savepoints` row of a record."""
    return {
        "id": record.id,
        "execution_id": record.execution_id,
        "seq": record.seq,
        "parent_id": record.parent_id,
        "call": record.call,
        "line": record.line,
        "name": record.name,
        "created_at": record.created_at,
        "digest": record.digest,
        "answer": record.answer,
        "restored": record.restored,
        "variables": record.variables,
        "reads": record.reads,
        "signature": record.signature,
        "script": record.script,
    }


def named_record(row: Any) -> NamedRecord:
    """The record of a `named` row."""
    value = bytes(row.content) if row.content is not None else row.value
    return NamedRecord(row.kind, row.name, value, row.updated_at, _bytes(row.signature))


def _status(execution_id: str, value: str) -> Status:
    try:
        status = Status(value)
    except ValueError:
        status = Status.UNKNOWN
    if status is Status.UNKNOWN:
        log.warning(
            "execution %s has the status %r, which flowrt does not know: it is shown as UNKNOWN "
            "and left alone (the row was altered; set a known status to use it again)",
            execution_id,
            value,
        )
    return status


def _bytes(value: Any) -> bytes | None:
    return bytes(value) if value is not None else None

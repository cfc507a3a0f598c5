"""What the signature of each stored row covers, and the checks a row passes before it is used.

A signature binds a row's contents to its place: an execution's to its id, a savepoint's to its
execution, id, sequence number and parent, a registered flow's to its name. A row copied from
elsewhere, or edited, fails its check. Not signed, because nothing is run or answered from them:
an execution's status, outputs, messages, worker and lease columns (checked where they are
read, see `rows.py`), a savepoint's `created_at`, `variables` (a display snapshot), `script`
(which source it was made under, shown to people; replay runs the execution's signed source)
and `restored` (a counter the database adds to; changing it only changes what `.restored` shows
and when the restore-loop limit trips).
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Sequence
from typing import Any

from flowrt.blobs import Field, Signer
from flowrt.errors import TamperedFlowError, TamperedSavepointError
from flowrt.storage.base import ExecutionRecord, NamedRecord, SavepointRecord

_EXECUTION, _SAVEPOINT, _FLOW = "execution/1", "savepoint/1", "flow/1"


def sign_execution(
    signer: Signer,
    execution_id: str,
    flow_name: str,
    source: str,
    inputs: dict[str, Any],
    parent_id: str | None,
) -> bytes:
    """The signature of a new execution's row: its id, flow, pinned source, inputs and parent."""
    fields = _execution_fields(execution_id, flow_name, source, inputs, parent_id)
    return signer.sign(_EXECUTION, fields)


def check_execution(signer: Signer, record: ExecutionRecord) -> None:
    """Raise `TamperedSavepointError` unless the execution's source and inputs are its own."""
    fields = _execution_fields(
        record.id, record.flow_name, record.source, record.inputs, record.parent_id
    )
    what = f"the source and inputs of execution {record.id}"
    signer.check(record.signature, _EXECUTION, fields, what)


def sign_savepoint(signer: Signer, record: SavepointRecord) -> bytes:
    """The signature of a journal row: its place, call, digest and blobs."""
    return signer.sign(_SAVEPOINT, _savepoint_fields(record))


def check_timeline(
    signer: Signer, record: ExecutionRecord, timeline: Sequence[SavepointRecord]
) -> None:
    """Raise `TamperedSavepointError` unless `timeline` is the execution's own signed chain,
    root first, ending at its head."""
    parent_id: str | None = None
    for seq, row in enumerate(timeline, start=1):
        what = f"savepoint #{row.seq} ({row.id}) of execution {record.id}"
        moved = _id(row.execution_id) != _id(record.id) or _id(row.parent_id) != parent_id
        if moved or row.seq != seq:
            raise TamperedSavepointError(
                what, "it is not where its execution's timeline leads: it was moved or altered"
            )
        signer.check(row.signature, _SAVEPOINT, _savepoint_fields(row), what)
        parent_id = _id(row.id)
    if record.head_id is not None and parent_id != _id(record.head_id):
        raise TamperedSavepointError(
            f"the head savepoint {record.head_id} of execution {record.id}",
            "no timeline of the execution leads to it: it was altered or deleted",
        )


def sign_flow(signer: Signer, name: str, source: str) -> bytes:
    """The signature of a registered flow's row: its name and source."""
    return signer.sign(_FLOW, (name, source))


def check_flow(signer: Signer, record: NamedRecord) -> str:
    """The registered flow's source, once its signature says it is the one registered."""
    value = record.value if isinstance(record.value, dict) else {}
    source = value.get("source")
    what = f"the registered flow {record.name!r}"
    if not isinstance(source, str):
        raise TamperedFlowError(what, "it holds no source: it was altered in the database")
    try:
        signer.check(record.signature, _FLOW, (record.name, source), what)
    except TamperedSavepointError as error:
        raise TamperedFlowError(error.what, error.reason) from None
    return source


def _execution_fields(
    execution_id: str, flow_name: str, source: str, inputs: dict[str, Any], parent_id: str | None
) -> tuple[Field, ...]:
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (_id(execution_id), flow_name, source, canonical, _id(parent_id))


def _savepoint_fields(record: SavepointRecord) -> tuple[Field, ...]:
    return (
        _id(record.execution_id),
        _id(record.id),
        record.seq,
        _id(record.parent_id),
        record.call,
        record.line,
        record.name,
        record.digest,
        record.answer,
        record.reads,
    )


def _id(value: str | None) -> str | None:
    # SQLite and PostgreSQL may hand an id back in different spellings.
    return None if value is None else _spelled(str(value))


@functools.lru_cache(maxsize=1 << 16)
def _spelled(value: str) -> str:
    # Cached: a replay checks every id of its timeline, most of them twice.
    return str(uuid.UUID(value))

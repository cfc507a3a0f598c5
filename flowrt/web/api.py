"""The JSON API: the CLI's operations on executions, savepoints, logs and messages."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, Field

from flowrt.cli_messages import message_dict
from flowrt.script import script_hash
from flowrt.status import Status
from flowrt.storage.browse import MAX_OFFSET, MAX_PAGE
from flowrt.web.deps import ClientDep, Masker
from flowrt.web.fix import CheckBody, ScriptChoice
from flowrt.web.views import execution_json, log_json, savepoint_json


class Problem(BaseModel):
    """Why a request was refused: the CLI's text for the same refusal."""

    detail: str


def _refusals(**codes: str) -> dict[int | str, dict[str, Any]]:
    return {int(code[1:]): {"model": Problem, "description": text} for code, text in codes.items()}


router = APIRouter(
    prefix="/api",
    tags=["executions"],
    responses=_refusals(
        _400="Bad input: a malformed parameter or body",
        _401="No or wrong basic-auth credentials (when FLOWRT_WEB_AUTH is set)",
        _403="A cross-site request",
        _404="No such execution, savepoint or message",
        _409="The execution's state does not allow it",
        _415="A request changing something without Content-Type: application/json",
    ),
)
Limit = Annotated[int, Query(ge=0, le=MAX_PAGE, description=f"At most {MAX_PAGE}.")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
NoArguments = Annotated[dict[str, Any] | None, Body(description="Nothing: send {}.")]


class RestoreBody(ScriptChoice):
    """Which savepoint to restore to, and optionally the corrected script to go on under."""

    ref: str = Field(min_length=1, description="The savepoint's id, or its name.")
    by: Literal["id", "name"] = "id"


@router.get("/executions")
def list_executions(
    client: ClientDep,
    mask: Masker,
    status: Status | None = None,
    flow: str | None = None,
    search: Annotated[str | None, Query(description="An execution id or its beginning.")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Executions newest first, filtered by status, flow and id, with the counts per status."""
    page = client.browse(status, flow, search, limit, offset)
    return mask(
        {
            "total": page.total,
            "counts": page.counts,
            "limit": limit,
            "offset": offset,
            "items": [execution_json(r, page.heads.get(r.id)) for r in page.rows],
        }
    )


@router.get("/executions/{execution_id}")
def get_execution(client: ClientDep, mask: Masker, execution_id: str) -> dict[str, Any]:
    """One execution (as `flowrt show --json`), its source, children and head savepoint."""
    handle = client.get(execution_id)
    record = handle.record()
    data = execution_json(record)
    data["source"] = record.source
    data["children"] = [child.id for child in handle.children()]
    return mask(data)


@router.get("/executions/{execution_id}/savepoints")
def list_savepoints(
    client: ClientDep, mask: Masker, execution_id: str, limit: Limit = 200, offset: Offset = 0
) -> dict[str, Any]:
    """Its savepoints in the order they were made, every branch, a window at a time."""
    handle = client.get(execution_id)
    head = handle.record().head_id
    rows, total = handle.savepoint_window(limit, offset)
    branch = handle.current_branch()
    return mask(
        {
            "total": total,
            "head": head,
            "limit": limit,
            "offset": offset,
            "items": [savepoint_json(sp, head, branch) for sp in rows],
        }
    )


@router.get("/executions/{execution_id}/logs")
def list_logs(
    client: ClientDep, mask: Masker, execution_id: str, limit: Limit = MAX_PAGE, offset: Offset = 0
) -> dict[str, Any]:
    """Its log lines, oldest first, a page at a time."""
    rows = client.get(execution_id).logs()
    return mask(
        {
            "total": len(rows),
            "limit": limit,
            "offset": offset,
            "items": [log_json(r) for r in rows[offset : offset + limit]],
        }
    )


@router.post("/executions/{execution_id}/restore")
def restore(
    client: ClientDep, mask: Masker, execution_id: str, body: RestoreBody
) -> dict[str, Any]:
    """Restore it to a savepoint (`flowrt restore ID REF --by id|name`); it runs on from there.
    With "script" or "flow_version", under that script, checked first as `check` does and
    refused (409, changing nothing) if it does not replay the journal up to the savepoint."""
    source = body.source(client)
    handle = client.get(execution_id).restore(body.ref, body.by, source)
    data = execution_json(handle.record())
    return mask({**data, "restored_under": script_hash(source) if source else None})


@router.post("/executions/{execution_id}/check", tags=["fix the script"])
def check(client: ClientDep, mask: Masker, execution_id: str, body: CheckBody) -> dict[str, Any]:
    """Replay a corrected script against its journal, performing nothing (`flowrt check`):
    compatible up to the savepoint, or the first divergence and the newest compatible one."""
    source = body.source(client)
    assert source is not None  # CheckBody requires one
    report = client.check(execution_id, source, body.to, body.by)
    return mask({**asdict(report), "text": report.describe()})


@router.post("/executions/{execution_id}/pause")
def pause(
    client: ClientDep, mask: Masker, execution_id: str, body: NoArguments = None
) -> dict[str, Any]:
    """Pause it until resumed (`flowrt pause`)."""
    return mask(execution_json(client.get(execution_id).pause().record()))


@router.post("/executions/{execution_id}/resume")
def resume(
    client: ClientDep, mask: Masker, execution_id: str, body: NoArguments = None
) -> dict[str, Any]:
    """Let a paused execution go on from its newest savepoint (`flowrt resume`)."""
    return mask(execution_json(client.get(execution_id).resume().record()))


@router.post("/executions/{execution_id}/cancel")
def cancel(
    client: ClientDep, mask: Masker, execution_id: str, body: NoArguments = None
) -> dict[str, Any]:
    """End it ENDED_CANCELLED with its children that have not ended (`flowrt cancel`)."""
    handle = client.get(execution_id)
    cancelled = client.runtime.cancel(handle.id)
    return mask({**execution_json(handle.record()), "cancelled_children": len(cancelled) - 1})


@router.post("/executions/{execution_id}/archive")
def archive(
    client: ClientDep, mask: Masker, execution_id: str, body: NoArguments = None
) -> dict[str, Any]:
    """Delete an ended execution's savepoints; status, outputs and logs stay (`flowrt archive`)."""
    return mask(execution_json(client.get(execution_id).archive().record()))


@router.get("/messages", tags=["messages"])
def list_messages(
    client: ClientDep, mask: Masker, execution: str | None = None
) -> list[dict[str, Any]]:
    """Pending messages, or all of one execution (`flowrt messages`)."""
    return mask([message_dict(m) for m in client.list_messages(execution)])


@router.post("/messages/{message_id}/respond", tags=["messages"])
def respond(
    client: ClientDep, mask: Masker, message_id: str, response: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Respond to a message, once (`flowrt respond`); the executions waiting for it go on."""
    return mask(message_dict(client.respond(message_id, response)))

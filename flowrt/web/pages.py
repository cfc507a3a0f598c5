"""The HTML pages: the list of executions and one execution with its savepoint timeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from flowrt.errors import ExecutionNotFoundError
from flowrt.forms import describe, example
from flowrt.script import script_hash
from flowrt.status import Status
from flowrt.storage.browse import MAX_OFFSET, MAX_PAGE
from flowrt.web.deps import ClientDep, Masker
from flowrt.web.fix import versions
from flowrt.web.views import execution_json, flower_search, interleave, savepoint_json

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
WINDOW = 200  # savepoints one page of the timeline shows


@router.get("/", response_class=HTMLResponse)
def executions_page(
    request: Request,
    client: ClientDep,
    mask: Masker,
    status: Status | None = None,
    flow: str | None = None,
    search: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    """Executions newest first, with filters, counts per status and pages."""
    page = client.browse(status, flow or None, search or None, limit, offset)
    filters = {"status": status.value if status else "", "flow": flow or "", "search": search or ""}
    return templates.TemplateResponse(
        request,
        "list.html",
        mask(
            {
                "rows": [execution_json(r, page.heads.get(r.id)) for r in page.rows],
                "total": page.total,
                "counts": page.counts,
                "statuses": [s.value for s in Status],
                "filters": filters,
                "limit": limit,
                "offset": offset,
            }
        ),
    )


@router.get("/executions/{execution_id}", response_class=HTMLResponse)
def execution_page(
    request: Request,
    client: ClientDep,
    mask: Masker,
    execution_id: str,
    sp_offset: Annotated[int | None, Query(ge=0, le=MAX_OFFSET)] = None,
) -> HTMLResponse:
    """One execution: state, source, savepoint timeline with logs, and the actions."""
    try:
        handle = client.get(execution_id)
    except ExecutionNotFoundError as error:
        return templates.TemplateResponse(
            request, "missing.html", {"detail": mask(str(error))}, status_code=404
        )
    record = handle.record()
    total = handle.savepoint_window(0, 0)[1]
    offset = max(0, total - WINDOW) if sp_offset is None else sp_offset
    rows, total = handle.savepoint_window(WINDOW, offset)
    branch = handle.current_branch()
    logs = handle.logs()
    owned = interleave(rows, logs)
    timeline: list[dict[str, Any]] = []
    current = script_hash(record.source)
    older = {sp.script for sp in rows if sp.script and sp.script != current}
    for sp in rows:
        item = savepoint_json(sp, record.head_id, branch)
        item["logs"] = [{"line": log.line, "message": log.message} for log in owned[sp.id]]
        timeline.append(item)
    return templates.TemplateResponse(
        request,
        "execution.html",
        mask(
            {
                "e": execution_json(record),
                "scripts": client.script_sources(older) if older else {},
                "versions": versions(client, record.flow_name),
                "flower": client.settings.flower_url,
                "flower_steps": flower_search(client.settings.flower_url, record.id),
                "source_lines": record.source.splitlines(),
                "children": [execution_json(c.record()) for c in handle.children()],
                "messages": [
                    {
                        "id": m.id,
                        "subject": m.subject,
                        "type": m.message_type,
                        "form": describe(m.body),
                        "example": example(m.body),
                    }
                    for m in client.list_messages(record.id)
                    if m.responded_at is None
                ],
                "timeline": timeline,
                "total": total,
                "offset": offset,
                "window": WINDOW,
                "logs_before": [
                    {"line": log.line, "message": log.message}
                    for log in logs
                    if offset == 0 and (not rows or log.created_at < rows[0].created_at)
                ],
            }
        ),
    )

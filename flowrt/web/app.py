"""The web view's ASGI application: routes, error answers, and the guard in front of them."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from flowrt.client import Client, default_client
from flowrt.errors import (
    ExecutionNotFoundError,
    FlowNotFoundError,
    FlowrtError,
    IncompatibleScriptError,
    InvalidStateError,
    MessageAnsweredError,
    NotFoundError,
    SavepointNotFoundError,
)
from flowrt.web import api, pages
from flowrt.web.deps import client_of, connector_secrets, masked
from flowrt.web.guard import Guard, parse_auth

_NOT_FOUND = (ExecutionNotFoundError, NotFoundError, SavepointNotFoundError, FlowNotFoundError)
_CONFLICT = (InvalidStateError, MessageAnsweredError, IncompatibleScriptError)


def create_app(client: Client | None = None, users: list[tuple[str, str]] | None = None) -> Any:
    """The web view on `client` (default: the client of the FLOWRT_* environment), behind
    basic auth for `users` (default: those of the client's FLOWRT_WEB_AUTH; none: no auth)."""
    if client is None:
        client = default_client()
    if users is None:
        users = parse_auth(client.settings.web_auth)
    app = FastAPI(
        title="flowrt",
        summary="Executions, their savepoints, and restoring them",
        openapi_url="/api/openapi.json",
        docs_url=None,  # the interactive docs load scripts from the internet
        redoc_url=None,
    )
    app.state.client = client
    app.include_router(api.router)
    app.include_router(pages.router)
    app.add_exception_handler(FlowrtError, _flowrt_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.openapi = lambda: _documented(app)  # type: ignore[method-assign]
    return Guard(app, users)


def _documented(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document without FastAPI's 422 answers: bad input is answered 400."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        app.openapi_schema = document
    return app.openapi_schema


async def _flowrt_error(request: Request, error: Exception) -> JSONResponse:
    if isinstance(error, _NOT_FOUND):
        status = 404
    elif isinstance(error, _CONFLICT):
        status = 409
    else:
        status = 400
    secrets = connector_secrets(client_of(request))
    return JSONResponse({"detail": masked(str(error), secrets)}, status_code=status)


async def _invalid_request(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body") or "body"
        if item.get("type") == "json_invalid":
            problems.append(f"the body is not valid JSON ({item.get('ctx', {}).get('error')})")
        else:
            problems.append(f"{where}: {item.get('msg')}")
    return JSONResponse({"detail": "; ".join(problems)}, status_code=400)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    return JSONResponse({"detail": str(error.detail)}, status_code=error.status_code)

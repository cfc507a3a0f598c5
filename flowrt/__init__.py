"""flowrt: durable execution for Python automation scripts, with restorable savepoints."""

from flowrt.client import Client, Handle, check, default_client, get, shutdown, start
from flowrt.dryrun import CheckReport
from flowrt.errors import (
    DependencyFailedError,
    DeterminismError,
    FlowApiError,
    FlowrtError,
    IncompatibleScriptError,
    RestoreLoopError,
    SavepointNotFoundError,
    ScriptError,
)
from flowrt.status import Status

__all__ = [
    # entry points
    "Client",
    "Handle",
    "check",
    "CheckReport",
    "default_client",
    "get",
    "shutdown",
    "start",
    # statuses and errors
    "DependencyFailedError",
    "DeterminismError",
    "FlowApiError",
    "FlowrtError",
    "IncompatibleScriptError",
    "RestoreLoopError",
    "SavepointNotFoundError",
    "ScriptError",
    "Status",
]

"""The Flow-API a flow script sees as `import flow_api`: `System`, `Execution` and their objects.

Every method here that touches the platform is a Flow-API call: a savepoint is stored just
before it is performed, and replay answers it from the journal instead of performing it again.
"""

from __future__ import annotations

from flowrt.flow_api import exceptions
from flowrt.flow_api.children import ChildExecution, ChildRef, ReturnWhen
from flowrt.flow_api.connections import ConnectionExecution
from flowrt.flow_api.exceptions import (
    AnswerTooLargeError,
    ConnectorConfigError,
    ConnectorError,
    ConnectorNotFoundError,
    DependencyFailedError,
    FlowApiError,
    FlowNotFoundError,
    ForeignSavepointError,
    HttpStatusError,
    InvalidCallError,
    LockNotHeldError,
    LockTimeoutError,
    MessageResponseTimeoutError,
    NotFoundError,
    ResourceNotFoundError,
    RestoreLoopError,
    SavepointNotFoundError,
    SchemaValidationError,
    ScriptError,
    SerializationError,
    TimeoutExceededError,
    UnstorableValueError,
    UnsupportedCallError,
    UnsupportedConnectionError,
)
from flowrt.flow_api.execution import ConnectorResult, Execution, SavepointInfo
from flowrt.flow_api.flows import Flow
from flowrt.flow_api.messages import Message
from flowrt.flow_api.system import Client, Connection, File, Setting, System, User

__all__ = [
    "exceptions",
    "ChildRef",
    # what a flow may catch: FlowApiError and every error a call raises for what it asked
    "AnswerTooLargeError",
    "ConnectorConfigError",
    "ConnectorError",
    "ConnectorNotFoundError",
    "DependencyFailedError",
    "FlowApiError",
    "FlowNotFoundError",
    "ForeignSavepointError",
    "HttpStatusError",
    "InvalidCallError",
    "MessageResponseTimeoutError",
    "LockNotHeldError",
    "LockTimeoutError",
    "NotFoundError",
    "ResourceNotFoundError",
    "RestoreLoopError",
    "SavepointNotFoundError",
    "SchemaValidationError",
    "ScriptError",
    "SerializationError",
    "TimeoutExceededError",
    "UnstorableValueError",
    "UnsupportedCallError",
    "UnsupportedConnectionError",
    # the objects a flow is handed
    "ChildExecution",
    "Client",
    "Connection",
    "ConnectionExecution",
    "ConnectorResult",
    "Execution",
    "File",
    "Flow",
    "Message",
    "ReturnWhen",
    "SavepointInfo",
    "Setting",
    "System",
    "User",
]

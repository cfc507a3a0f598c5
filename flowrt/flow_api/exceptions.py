"""The errors a flow may catch, as `flow_api.exceptions.<Name>` (Cloudomation's place).

`FlowApiError` is the base of every error a Flow-API call raises for what it was asked.
"""

from flowrt.errors import (
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
    NotFoundError,
    ResourceNotFoundError,
    RestoreLoopError,
    SavepointNotFoundError,
    ScriptError,
    SerializationError,
    UnstorableValueError,
)

__all__ = [
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
    "LockNotHeldError",
    "LockTimeoutError",
    "NotFoundError",
    "ResourceNotFoundError",
    "RestoreLoopError",
    "SavepointNotFoundError",
    "ScriptError",
    "SerializationError",
    "UnstorableValueError",
]

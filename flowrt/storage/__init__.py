"""Where executions, savepoints and the platform's named objects are kept."""

from flowrt.storage.base import (
    ExecutionRecord,
    LogRecord,
    MessageRecord,
    NamedRecord,
    SavepointRecord,
    StepCommit,
    Store,
)
from flowrt.storage.sql import SqlStore, open_store

__all__ = [
    "ExecutionRecord",
    "LogRecord",
    "MessageRecord",
    "NamedRecord",
    "SavepointRecord",
    "SqlStore",
    "StepCommit",
    "Store",
    "open_store",
]

"""How each Flow-API call is performed by a step, once its savepoint is stored.

`base` holds the registry and the results; each module beside it performs one area of the
Flow-API and registers its performers when imported, which this package does for all.
"""

from flowrt.perform import (
    children,
    connections,
    execution,
    flows,
    locks,
    messages,
    outputs,
    platform,
    records,
    savepoints,
)
from flowrt.perform.base import (
    PERFORMERS,
    REACHING_OUT,
    Answer,
    End,
    Restore,
    Result,
    StepContext,
    Wait,
    perform,
)

__all__ = [
    "PERFORMERS",
    "REACHING_OUT",
    "Answer",
    "End",
    "Restore",
    "Result",
    "StepContext",
    "Wait",
    "children",
    "connections",
    "execution",
    "flows",
    "locks",
    "messages",
    "outputs",
    "platform",
    "perform",
    "records",
    "savepoints",
]

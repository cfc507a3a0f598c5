"""The runtime: starts, steps, restores and archives executions over a store and a dispatcher.

Its verbs live in their own modules: `stepping` (a worker's step), `control` (restore, pause,
resume, cancel, archive) and `children` (child executions); `core` holds what they share.
"""

from __future__ import annotations

from flowrt.control import Control
from flowrt.stepping import Stepping
from flowrt.upgrade import BulkRestores


class Runtime(Stepping, Control, BulkRestores):
    """flowrt's engine for one process: a client, a worker, or both (embedded)."""

"""A worker must survive its broker going away: a fix for kombu 5.7's reconnect on Redis.

When a worker loses Redis, Celery 5.7 first calls `Connection.collect()`, which drops the
transport's reference to its connection, and then closes the old connection; closing the
Redis channel puts back the messages the worker had not acknowledged, which needs that
reference: `AttributeError: 'NoneType' object has no attribute 'hostname'`, and the worker
exits. A step that finished after the reconnect fails its late ack the same way. flowrt
workers nearly always hold unacknowledged messages (late acks, sleeps), so every Redis
restart would kill some of them. Keeping the reference lets the close go through (its
errors are then connection errors, which Celery ignores) and the worker reconnects.
"""

from __future__ import annotations

from typing import Any

from kombu.connection import Connection

_PATCHED = "_flowrt_keeps_transport_client"


def keep_transport_client_on_close() -> None:
    """Patch `kombu.Connection` once so that closing it leaves its transport's client set."""
    if getattr(Connection, _PATCHED, False):
        return

    def _do_close_transport(self: Any) -> None:
        # kombu sets `self._transport.client = None` here; channels of the old transport
        # still need it while they close or ack late, and it is collected with them.
        self._transport = None

    Connection._do_close_transport = _do_close_transport  # type: ignore[method-assign]
    setattr(Connection, _PATCHED, True)

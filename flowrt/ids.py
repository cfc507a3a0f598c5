"""Ids for executions and savepoints: UUIDs that sort by creation time (the layout of UUIDv7)."""

from __future__ import annotations

import os
import time
import uuid


def new_id() -> str:
    """A random UUID whose first 48 bits are the Unix time in ms, so new rows land together
    at the end of an index instead of on random pages."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10)) & ((1 << 80) - 1)
    value = value & ~(0xF << 76) | (0x7 << 76)  # version 7
    value = value & ~(0x3 << 62) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))

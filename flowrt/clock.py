"""The runtime's clock: timezone-aware UTC timestamps, the only kind flowrt stores."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time in UTC, timezone-aware."""
    return datetime.now(UTC)

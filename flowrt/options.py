"""The knobs of a runtime, passed in by whoever builds one; the core never reads the environment."""

from __future__ import annotations

from dataclasses import dataclass

from flowrt.errors import ConfigurationError


@dataclass(frozen=True)
class Options:
    """Limits and secrets a `Runtime` works with; `config.Settings.runtime_options()` fills them.

    Attributes:
        secret: key that signs every stored blob (HMAC-SHA256).
        sleep_max_s: seconds a waiting execution may stay in worker memory.
        max_restores: times a flow may restore one savepoint before "restore loop".
        max_answer_bytes: largest serialised answer of one Flow-API call.
        live_max: live executions one worker process keeps in memory between steps.
    """

    secret: bytes
    sleep_max_s: float = 60.0
    max_restores: int = 25
    max_answer_bytes: int = 16 * 1024 * 1024
    live_max: int = 256

    def __post_init__(self) -> None:
        if len(self.secret) < 16:
            raise ConfigurationError(
                "the signing secret is shorter than 16 bytes: set FLOWRT_SECRET to a longer one"
            )

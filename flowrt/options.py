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
        lease_s: seconds a worker answers for an execution without renewing its lease; after
            that the reaper sends the execution's step to another worker.
        sticky_max: steps a worker queues for itself at once; further ones go to the shared
            queue, where the least busy worker takes them.
        commit_attempts: attempts at a step's write when the database fails transiently.
        commit_retry_s: seconds before the second attempt, doubled for each further one
            up to `commit_retry_max_s`.
    """

    secret: bytes
    sleep_max_s: float = 60.0
    max_restores: int = 25
    max_answer_bytes: int = 16 * 1024 * 1024
    live_max: int = 256
    lease_s: float = 3.0
    sticky_max: int = 256
    commit_attempts: int = 5
    commit_retry_s: float = 0.05
    commit_retry_max_s: float = 1.0

    def __post_init__(self) -> None:
        if len(self.secret) < 16:
            raise ConfigurationError(
                "the signing secret is shorter than 16 bytes: set FLOWRT_SECRET to a longer one"
            )
        if self.lease_s <= 0:
            raise ConfigurationError("the lease must be above 0 s: set FLOWRT_LEASE_SECONDS")

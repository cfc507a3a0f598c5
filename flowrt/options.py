"""The knobs of a runtime, passed in by whoever builds one; the core never reads the environment."""

from __future__ import annotations

from dataclasses import dataclass

from flowrt.errors import ConfigurationError


@dataclass(frozen=True)
class Options:
    """Limits and secrets a `Runtime` works with; `config.Settings.runtime_options()` fills them.

    Attributes:
        secret: key that signs every stored row (HMAC-SHA256).
        old_secrets: keys that no longer sign but still verify what they signed (rotation).
        sleep_max_s: seconds a waiting execution may stay in worker memory.
        max_restores: times a flow may restore one savepoint before "restore loop".
        max_answer_bytes: largest serialised answer of one Flow-API call.
        live_max: live executions one worker process keeps in memory between steps.
        lease_s: seconds a worker answers for an execution without renewing its lease; after
            that the reaper sends the execution's step to another worker.
        sticky_max: steps a worker queues for itself at once; further ones go to the shared
            queue, where the least busy worker takes them.
        max_step_s: seconds a flow may run its own code without a Flow-API call before it is
            stopped and its execution ends ENDED_ERROR.
        stop_grace_s: seconds a stopped flow's thread has to end before it counts as stuck
            (blocked outside Python code) and its worker replaces itself.
        alone_wait_s: seconds a suspect's step waits for the other steps of its process to
            end so that it runs alone; past it, it is handed to another worker.
        max_crashes: worker deaths at one savepoint after which an execution is quarantined
            (ENDED_ERROR) instead of being handed to another worker.
        commit_attempts: attempts at a step's write when the database fails transiently.
        commit_retry_s: seconds before the second attempt, doubled for each further one
            up to `commit_retry_max_s`.
        user_name: the user executions run as (`system.get_own_user()`).
        env_name: the name of this flowrt environment (`system.get_env_name()`).
        client_name: the client executions run for (`system.get_own_client()`,
            `this.get('client_name')`).
    """

    secret: bytes
    old_secrets: tuple[bytes, ...] = ()
    sleep_max_s: float = 60.0
    max_restores: int = 25
    max_answer_bytes: int = 16 * 1024 * 1024
    live_max: int = 256
    lease_s: float = 3.0
    sticky_max: int = 256
    max_step_s: float = 600.0
    stop_grace_s: float = 5.0
    max_crashes: int = 3
    alone_wait_s: float = 1.0
    commit_attempts: int = 5
    commit_retry_s: float = 0.05
    commit_retry_max_s: float = 1.0
    user_name: str = "flowrt"
    env_name: str = "flowrt"
    client_name: str = "flowrt"

    def __post_init__(self) -> None:
        if any(len(key) < 16 for key in (self.secret, *self.old_secrets)):
            raise ConfigurationError(
                "the signing secret is shorter than 16 bytes: set FLOWRT_SECRET to a longer one"
            )
        if self.lease_s <= 0:
            raise ConfigurationError("the lease must be above 0 s: set FLOWRT_LEASE_SECONDS")
        if self.max_step_s <= 0:
            raise ConfigurationError(
                "the step deadline must be above 0 s: set FLOWRT_MAX_STEP_SECONDS"
            )
        if self.max_crashes < 1:
            raise ConfigurationError("FLOWRT_MAX_CRASHES must be at least 1")

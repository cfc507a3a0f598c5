"""Settings read once from the environment into a frozen dataclass."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config import defaults

PREFIX = "FLOWRT_"
MIN_SECRET_CHARS = 16


class SettingsError(ValueError):
    """Raised when a FLOWRT_* variable holds a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    """Everything flowrt's edges need to wire a runtime, a worker or a client together."""

    home: Path
    database_url: str
    broker_url: str
    # The signing keys from FLOWRT_SECRET: the first signs, all verify (rotation).
    secrets: tuple[bytes, ...]
    sleep_max_seconds: float
    max_restores: int
    max_answer_bytes: int
    live_max: int
    worker_concurrency: int
    visibility_timeout_s: int
    queue: str
    lease_seconds: float
    reap_interval_seconds: float
    sticky_max: int
    max_step_seconds: float
    max_crashes: int
    shutdown_grace_seconds: float
    commit_attempts: int = defaults.COMMIT_ATTEMPTS
    commit_retry_seconds: float = defaults.COMMIT_RETRY_SECONDS
    commit_retry_max_seconds: float = defaults.COMMIT_RETRY_MAX_SECONDS
    step_retries: int = defaults.STEP_RETRIES
    step_retry_seconds: float = defaults.STEP_RETRY_SECONDS
    step_retry_max_seconds: float = defaults.STEP_RETRY_MAX_SECONDS
    user_name: str = defaults.USER
    env_name: str = defaults.ENV_NAME
    client_name: str = defaults.CLIENT_NAME
    web_auth: str = field(default=defaults.WEB_AUTH, repr=False)
    flower_url: str = defaults.FLOWER_URL

    @property
    def embedded_broker(self) -> bool:
        """True when the broker lives inside this process (memory://) and no worker can share it."""
        return self.broker_url.startswith("memory://")

    def runtime_options(self) -> dict[str, Any]:
        """The keyword arguments of `flowrt.options.Options` taken from these settings."""
        return {
            "secret": self.secrets[0],
            "old_secrets": self.secrets[1:],
            "sleep_max_s": self.sleep_max_seconds,
            "max_restores": self.max_restores,
            "max_answer_bytes": self.max_answer_bytes,
            "live_max": self.live_max,
            "lease_s": self.lease_seconds,
            "sticky_max": self.sticky_max,
            "max_step_s": self.max_step_seconds,
            "max_crashes": self.max_crashes,
            "commit_attempts": self.commit_attempts,
            "commit_retry_s": self.commit_retry_seconds,
            "commit_retry_max_s": self.commit_retry_max_seconds,
            "user_name": self.user_name,
            "env_name": self.env_name,
            "client_name": self.client_name,
        }

    @property
    def reap_queue(self) -> str:
        """The queue of the reaper's messages, apart so that a long step backlog cannot delay it."""
        return f"{self.queue}.reap"


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from `env` (default: the process environment)."""
    env = os.environ if env is None else env
    home = Path(_text(env, "HOME", defaults.HOME)).expanduser()
    database_url = _text(env, "DATABASE_URL", defaults.DATABASE_URL)
    if not database_url:
        database_url = f"sqlite:///{home / 'flowrt.db'}"
    broker_url = _text(env, "BROKER_URL", defaults.BROKER_URL)
    return Settings(
        home=home,
        database_url=database_url,
        broker_url=broker_url,
        secrets=_secrets(env, home, broker_url.startswith("memory://")),
        sleep_max_seconds=_number(env, "SLEEP_MAX_SECONDS", defaults.SLEEP_MAX_SECONDS, float),
        max_restores=_number(env, "MAX_RESTORES", defaults.MAX_RESTORES, int),
        max_answer_bytes=_number(env, "MAX_ANSWER_BYTES", defaults.MAX_ANSWER_BYTES, int),
        live_max=_number(env, "LIVE_MAX", defaults.LIVE_MAX, int),
        worker_concurrency=_number(env, "WORKER_CONCURRENCY", defaults.WORKER_CONCURRENCY, int),
        visibility_timeout_s=_number(
            env, "VISIBILITY_TIMEOUT_S", defaults.VISIBILITY_TIMEOUT_S, int
        ),
        queue=_text(env, "QUEUE", defaults.QUEUE),
        lease_seconds=_positive(env, "LEASE_SECONDS", defaults.LEASE_SECONDS),
        reap_interval_seconds=_positive(
            env, "REAP_INTERVAL_SECONDS", defaults.REAP_INTERVAL_SECONDS
        ),
        sticky_max=_number(env, "STICKY_MAX", defaults.STICKY_MAX, int),
        max_step_seconds=_positive(env, "MAX_STEP_SECONDS", defaults.MAX_STEP_SECONDS),
        max_crashes=_count(env, "MAX_CRASHES", defaults.MAX_CRASHES),
        shutdown_grace_seconds=_positive(
            env, "SHUTDOWN_GRACE_SECONDS", defaults.SHUTDOWN_GRACE_SECONDS
        ),
        commit_attempts=_number(env, "COMMIT_ATTEMPTS", defaults.COMMIT_ATTEMPTS, int),
        commit_retry_seconds=_number(
            env, "COMMIT_RETRY_SECONDS", defaults.COMMIT_RETRY_SECONDS, float
        ),
        commit_retry_max_seconds=_number(
            env, "COMMIT_RETRY_MAX_SECONDS", defaults.COMMIT_RETRY_MAX_SECONDS, float
        ),
        step_retries=_number(env, "STEP_RETRIES", defaults.STEP_RETRIES, int),
        step_retry_seconds=_number(env, "STEP_RETRY_SECONDS", defaults.STEP_RETRY_SECONDS, float),
        step_retry_max_seconds=_number(
            env, "STEP_RETRY_MAX_SECONDS", defaults.STEP_RETRY_MAX_SECONDS, float
        ),
        user_name=_text(env, "USER", defaults.USER) or defaults.USER,
        env_name=_text(env, "ENV_NAME", defaults.ENV_NAME) or defaults.ENV_NAME,
        client_name=_text(env, "CLIENT_NAME", defaults.CLIENT_NAME) or defaults.CLIENT_NAME,
        web_auth=_text(env, "WEB_AUTH", defaults.WEB_AUTH),
        flower_url=_web_address(env, "FLOWER_URL", defaults.FLOWER_URL),
    )


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(PREFIX + name, default).strip()


def _number(env: Mapping[str, str], name: str, default: Any, kind: type) -> Any:
    raw = env.get(PREFIX + name)
    if raw is None or not raw.strip():
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(
            f"{PREFIX}{name}={raw!r} is not a valid {kind.__name__}; "
            f"set it to a number such as {default!r} or unset it"
        ) from None
    if value < 0:
        raise SettingsError(f"{PREFIX}{name}={raw!r} must not be negative")
    return value


def _web_address(env: Mapping[str, str], name: str, default: str) -> str:
    value = _text(env, name, default).rstrip("/")
    if value and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
        raise SettingsError(
            f"{PREFIX}{name}={value!r} is not a web address; set it to where a browser opens "
            "it, such as http://localhost:5555, or leave it empty"
        )
    return value


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    value: float = _number(env, name, default, float)
    if value <= 0:
        raise SettingsError(f"{PREFIX}{name}={value!r} must be above 0 (default {default!r})")
    return value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    value: int = _number(env, name, default, int)
    if value < 1:
        raise SettingsError(f"{PREFIX}{name}={value!r} must be at least 1 (default {default!r})")
    return value


def _secrets(env: Mapping[str, str], home: Path, embedded: bool) -> tuple[bytes, ...]:
    """The keys of FLOWRT_SECRET (comma-separated, the first signs); generated only when
    embedded, where no other process shares the database's state."""
    given = [part.strip() for part in _text(env, "SECRET", defaults.SECRET).split(",")]
    keys = tuple(part.encode() for part in given if part)
    short = [n for n, key in enumerate(keys, start=1) if len(key) < MIN_SECRET_CHARS]
    if short:
        raise SettingsError(
            f"{PREFIX}SECRET: secret number {short[0]} of the list is shorter than "
            f"{MIN_SECRET_CHARS} characters; use long random ones, such as "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`"
        )
    if keys:
        return keys
    if not embedded:
        raise SettingsError(
            f"{PREFIX}SECRET is not set: with the broker {PREFIX}BROKER_URL (not memory://) "
            "every worker and client must sign and check stored state with the same secret; "
            f"set {PREFIX}SECRET to the same long random value for all of them"
        )
    return (_generated_secret(home),)


def _generated_secret(home: Path) -> bytes:
    # Created readable by its owner only, and whole: written aside, then linked into place,
    # so a second process starting at the same time reads either nothing or all of it.
    path = home / "secret"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        spare = home / f".secret.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
        try:
            os.link(spare, path)
        except FileExistsError:
            pass
        finally:
            spare.unlink()
    return path.read_text().strip().encode()

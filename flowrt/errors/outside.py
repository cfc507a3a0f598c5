"""Errors of the calls that reach outside an execution: connectors, messages to people, and
the locks of settings other executions share."""

from __future__ import annotations

from flowrt.errors.base import FlowApiError, StorageError


class ConnectorError(FlowApiError):
    """Raised when a connector is unknown, misconfigured or its call fails."""


class ConnectorNotFoundError(ConnectorError):
    """Raised when a flow connects to a connector name nobody configured."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return (
            f"no connector named {self.name!r}; configure it with "
            f"`flowrt connector set {self.name} --type sql|rest ...`"
        )


class ConnectorConfigError(ConnectorError):
    """Raised when a connector's configuration is unusable (at `connector set`, or at connect)."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(name, problem)
        self.name, self.problem = name, problem

    def __str__(self) -> str:
        return (
            f"connector {self.name!r} is misconfigured: {self.problem}; fix it with "
            f"`flowrt connector set {self.name} --type sql|rest ...`"
        )


class UnsupportedConnectionError(ConnectorError):
    """Raised when a flow connects with a connection type flowrt has no connector for."""

    def __init__(self, connection_type: str, supported: str) -> None:
        super().__init__(connection_type, supported)
        self.connection_type, self.supported = connection_type, supported

    def __str__(self) -> str:
        return (
            f"connection type {self.connection_type!r} is not supported by flowrt (it runs no "
            f"connector for it here); the supported types are {self.supported}"
        )


class HttpStatusError(ConnectorError):
    """Raised when a REST call answers with a status of 400 or above."""

    def __init__(self, method: str, url: str, status_code: int, body: str) -> None:
        super().__init__(method, url, status_code, body)
        self.method, self.url, self.status_code, self.body = method, url, status_code, body

    def __str__(self) -> str:
        return (
            f"{self.method.upper()} {self.url} answered {self.status_code}: {self.body[:500]}; "
            "pass raise_for_status=False to get the response regardless"
        )


class RemoteCommandError(ConnectorError):
    """Raised when a script run over SSH exits with a status other than 0."""

    def __init__(self, connector: str, where: str, retcode: int, stdout: str, stderr: str) -> None:
        super().__init__(connector, where, retcode, stdout, stderr)
        self.connector, self.where = connector, where
        self.retcode, self.stdout, self.stderr = retcode, stdout, stderr

    def __str__(self) -> str:
        said = (self.stderr.strip() or self.stdout.strip())[-500:]
        return (
            f"connector {self.connector!r}: the script on {self.where} exited with "
            f"{self.retcode}"
            + (f": {said}" if said else "")
            + "; pass raise_for_retcode=False to get its output regardless"
        )


# --- messages and forms ------------------------------------------------------------------------


class TimeoutExceededError(FlowApiError):
    """Raised when a Flow-API call that waits gives up after its `timeout` (Cloudomation's name)."""


class MessageResponseTimeoutError(TimeoutExceededError):
    """Raised by `msg.wait(timeout=...)` when nobody responded to the message in time."""

    def __init__(self, message_id: str, timeout_s: float) -> None:
        super().__init__(message_id, timeout_s)
        self.message_id, self.timeout_s = message_id, timeout_s

    def __str__(self) -> str:
        return (
            f"nobody responded to message {self.message_id} within {self.timeout_s:g} s; "
            "catch this to carry on without it, or wait again (`flowrt respond` answers it)"
        )


class SchemaValidationError(FlowApiError):
    """Raised when a message's form is not a JSON schema, or a response does not fit its form.

    `where` names the field (or the form itself), `problem` what is wrong, `fix` what to do.
    """

    def __init__(self, subject: str, where: str, problem: str, fix: str) -> None:
        super().__init__(subject, where, problem, fix)
        self.subject, self.where, self.problem, self.fix = subject, where, problem, fix

    def __str__(self) -> str:
        return f"{self.subject}: {self.where}: {self.problem}; {self.fix}"


class MessageAnsweredError(StorageError):
    """Raised when a message that has its response already is responded to again."""

    def __init__(self, message_id: str, responded_at: str) -> None:
        super().__init__(message_id, responded_at)
        self.message_id, self.responded_at = message_id, responded_at

    def __str__(self) -> str:
        return (
            f"message {self.message_id} was responded to at {self.responded_at}; a response is "
            "final and is not replaced (`flowrt messages --execution ID` shows it)"
        )


# --- setting locks ------------------------------------------------------------------------------


class LockTimeoutError(TimeoutExceededError):
    """Raised when `setting.acquire(timeout=...)` could not get the lock within its timeout."""

    def __init__(self, name: str, holder: str, timeout_s: float) -> None:
        super().__init__(name, holder, timeout_s)
        self.name, self.holder, self.timeout_s = name, holder, timeout_s

    def __str__(self) -> str:
        return (
            f"the lock of setting {self.name!r} is still held by execution {self.holder} after "
            f"{self.timeout_s:g} s; try again later, wait longer (timeout=None waits for as "
            f"long as it takes), or see what holds it with `flowrt show {self.holder}`"
        )


class LockNotHeldError(FlowApiError):
    """Raised when an execution releases a setting's lock it does not hold."""

    def __init__(self, name: str, holder: str | None) -> None:
        super().__init__(name, holder)
        self.name, self.holder = name, holder

    def __str__(self) -> str:
        if self.holder is None:
            return (
                f"cannot release the lock of setting {self.name!r}: nobody holds it; take it "
                "with setting.acquire() first"
            )
        return (
            f"cannot release the lock of setting {self.name!r}: execution {self.holder} holds "
            "it, not this one; only the holder releases a lock (it is released by itself "
            "when its holder ends)"
        )

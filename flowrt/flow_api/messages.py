"""Messages and forms as a flow sees them: what `system.message(...)` returns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowrt.errors import InvalidCallError
from flowrt.values import check_seconds

if TYPE_CHECKING:
    from flowrt.live import LiveExecution

# What `get` and `load` read of a message; `status` is 'PENDING' until someone responds,
# then 'RESPONDED' (and `is_submitted` True).
MESSAGE_FIELDS = (
    "id",
    "subject",
    "message_type",
    "body",
    "response",
    "status",
    "is_submitted",
    "execution_id",
    "created_at",
    "responded_at",
)


class Message:
    """A message sent to people, with its form; `system.message(...)` returns one.

    `msg.wait()` waits until someone responds (`flowrt respond`, `Handle.respond`), and
    `msg.get('response')` is then the response, a dict that fits the form.
    """

    def __init__(self, live: LiveExecution, message_id: str) -> None:
        self._live, self.id = live, message_id

    def __repr__(self) -> str:
        return f"<message {self.id}>"

    def wait(self, timeout: float | None = None) -> Message:
        """Wait until someone responds to the message; returns the message itself.

        With `timeout` (seconds) it raises `MessageResponseTimeoutError` (a
        `TimeoutExceededError`, a `FlowApiError`) once that long has passed with no response.

        Durability: creates a savepoint; the execution is WAITING meanwhile and holds no
        worker slot (unloaded after FLOWRT_SLEEP_MAX_SECONDS); the response wakes it on
        whichever worker. The timeout is fixed when the wait begins: a re-run step does not
        extend it. Replay returns at once.
        """
        timeout_s = None if timeout is None else check_seconds("message.wait", timeout)
        self._live.call("message.wait", (self.id, timeout_s), {})
        return self

    def get(self, field: str) -> Any:
        """Read one field: `'response'`, `'status'`, `'subject'`, `'body'`, `'id'`, ...

        Durability: creates a savepoint; replay returns the value read the first time.
        """
        return self._read("message.get", (field,))[0]

    def load(self, *fields: str) -> Any:
        """Read fields afresh: one field gives its value, several a tuple of theirs.

        Durability: as `get`.
        """
        if not fields:
            raise InvalidCallError(f"message.load() needs a field: {', '.join(MESSAGE_FIELDS)}")
        values = self._read("message.load", fields)
        return values[0] if len(values) == 1 else tuple(values)

    def _read(self, call: str, fields: tuple[Any, ...]) -> list[Any]:
        for field in fields:
            if field not in MESSAGE_FIELDS:
                raise InvalidCallError(
                    f"{call}({field!r}): a message has the fields {', '.join(MESSAGE_FIELDS)}"
                )
        return list(self._live.call(call, (self.id, tuple(fields)), {}))

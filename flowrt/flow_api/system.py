"""`system`: the platform around the execution, and the records stored on it."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from flowrt.errors import InvalidCallError
from flowrt.flow_api.children import ChildExecution, ReturnWhen, check_limit
from flowrt.flow_api.flows import Flow
from flowrt.flow_api.messages import Message
from flowrt.forms import form_body, subject_text
from flowrt.forms import message_type as type_named
from flowrt.storage.rows import is_uuid
from flowrt.values import check_json, check_name

if TYPE_CHECKING:
    from flowrt.live import LiveExecution


class System:
    """`system`: the platform around the execution: settings, files, flows, executions and
    messages."""

    return_when = ReturnWhen

    def __init__(self, live: LiveExecution) -> None:
        self._live = live

    def setting(self, name: str) -> Setting:
        """A handle on the setting `name` (no call is made until you use it)."""
        return Setting(self._live, name)

    def file(self, name: str) -> File:
        """A handle on the file `name` (no call is made until you use it)."""
        return File(self._live, name)

    def flow(self, name: str) -> Flow:
        """A handle on the registered flow `name` (no call is made until you use it)."""
        return Flow(self._live, name)

    def flows(self) -> list[Flow]:
        """Every registered flow, by name. Durability: creates a savepoint."""
        return [Flow(self._live, name) for name in self._live.call("flows", (), {})]

    def executions(self, limit: int = 100) -> list[ChildExecution]:
        """The newest `limit` executions (1 to 1000), newest first, this one among them.

        Each can be read (`get`, `load`); only this execution's own children can be run,
        waited for, archived or deleted. Durability: creates a savepoint; replay returns
        the list made the first time.
        """
        refs = self._live.call("executions", (check_limit("system.executions", limit),), {})
        return [ChildExecution(self._live, ref) for ref in refs]

    def message(
        self,
        select: str | None = None,
        subject: str | None = None,
        message_type: str = "INFO",
        body: Any = None,
        request: str | None = None,
        message: str | None = None,
        **unused: Any,
    ) -> Message:
        """Send a message to people, with a form for their response; or, given the id of one
        (`select`), a handle on that message (no call is made until you use it).

        `body` is the form, Cloudomation's: a JSON schema of an object whose properties also
        say how to show them (`element`, `label`, `order`), or a text; `request='question?'`
        asks for one text (the response's `'string'`); `message='text'` just informs.
        `message_type` is INFO, SUCCESS, WARNING, ERROR or POPUP. Returns the `Message`:
        `.wait()` for the response, `.get('response')` to read it.

        Durability: creates a savepoint and stores the message once: a step that runs again
        finds the message it stored; a restore of this savepoint sends a new one. Replay
        returns the same message. A form that is not a JSON schema raises
        `SchemaValidationError`; a subject or text a database refuses, `UnstorableValueError`.
        """
        call = "system.message"
        if unused:
            raise InvalidCallError(
                f"{call}() does not take {sorted(unused)}; it takes subject=, message_type=, "
                "body=, request= and message=, or the id of a message"
            )
        if select is not None:
            others = (subject, body, request, message)
            if not isinstance(select, str) or not is_uuid(select) or any(others):
                raise InvalidCallError(
                    f"{call}({select!r}): give either the id of a message (a str) or, as "
                    "keywords, the message to send: subject=..., body=..."
                )
            return Message(self._live, str(uuid.UUID(select)))
        subject = subject_text(call, subject)
        kind = type_named(call, message_type)
        form = form_body(call, body, request, message)
        return Message(self._live, self._live.call("message", (subject, kind, form), {}))

    def connection(self, name: str) -> Connection:
        """A handle on the stored connector `name` (no call is made until you use it)."""
        return Connection(self._live, name)


class _Record:
    """A named object stored outside the execution; restores do not roll it back."""

    kind = ""

    def __init__(self, live: LiveExecution, name: str) -> None:
        self._live, self.name = live, name

    def _check_name(self, method: str) -> None:
        check_name(f"{self.kind}.{method}", f"the {self.kind} name", self.name)

    def get(self, field: str | None = None) -> Any:
        """Read a field of the record (default: `'value'` of a setting, `'content'` of a file).

        Durability: creates a savepoint; replay returns the value read the first time.
        """
        self._check_name("get")
        return self._live.call(f"{self.kind}.get", (self.name, field), {})

    def save(self, **fields: Any) -> None:
        """Create or update the record with `fields`.

        Durability: creates a savepoint; performed at least once; a restore does not undo it.
        A value JSON cannot hold, or holding NaN, NUL or a lone surrogate, is refused at once.
        """
        self._check_name("save")
        for field, value in fields.items():
            if not (self.kind == "file" and isinstance(value, (bytes, bytearray))):
                check_json(f"{self.kind}.save", field, value)
        self._live.call(f"{self.kind}.save", (self.name,), fields)

    def exists(self) -> bool:
        """True when the record exists. Durability: creates a savepoint."""
        self._check_name("exists")
        return bool(self._live.call(f"{self.kind}.exists", (self.name,), {}))

    def delete(self) -> None:
        """Delete the record. Durability: creates a savepoint; a restore does not undo it."""
        self._check_name("delete")
        self._live.call(f"{self.kind}.delete", (self.name,), {})


class Setting(_Record):
    """A setting: a JSON `value` shared by all executions (`get('value')`, `save(value=...)`)."""

    kind = "setting"


class File(_Record):
    """A file: `content` (text or bytes) shared by all executions (`save(content=...)`)."""

    kind = "file"


class Connection(_Record):
    """A stored connector, as a record: `get('value')` (its settings, credentials included:
    the flow may need them, flowrt never prints them), `get('connection_type')` ('REST', ...),
    `save(connection_type='REST', value={...})` (checked like `flowrt connector set`),
    `exists()`, `delete()`. `this.connect(name, ...)` uses it."""

    kind = "connection"

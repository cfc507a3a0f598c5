"""`system`: the platform around the execution, and the records stored on it."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from flowrt.errors import InvalidCallError
from flowrt.flow_api.children import ChildExecution, ReturnWhen, check_limit
from flowrt.flow_api.flows import Flow
from flowrt.flow_api.messages import Message
from flowrt.flow_api.unsupported import refuse
from flowrt.forms import form_body, subject_text
from flowrt.forms import message_type as type_named
from flowrt.storage.rows import is_uuid
from flowrt.values import check_count, check_json, check_name, check_seconds

if TYPE_CHECKING:
    from flowrt.live import LiveExecution

_UNSET: Any = object()  # `system.setting(name)` without value=: a handle only


class System:
    """`system`: the platform around the execution: settings, files, flows, executions and
    messages."""

    return_when = ReturnWhen

    def __getattr__(self, name: str) -> Any:
        # Only for names the class lacks: Cloudomation's calls flowrt has not say so.
        if name.startswith("_"):
            raise AttributeError(name)
        refuse("system", name)

    def __init__(self, live: LiveExecution) -> None:
        self._live = live

    def setting(self, name: str, value: Any = _UNSET) -> Setting:
        """A handle on the setting `name` (no call is made until you use it).

        With `value=`, the setting is created or updated with it first: that is a Flow-API
        call, as `setting.save(value=...)`.
        """
        setting = Setting(self._live, name)
        if value is not _UNSET:
            setting.save(value=value)
        return setting

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

    def settings(self, **query: Any) -> list[Setting]:
        """Every setting, by name, as handles (`for s in system.settings(): s.get('value')`).

        Durability: creates a savepoint; replay returns the settings listed the first time.
        Cloudomation's `filter=` is not supported (`InvalidCallError`): filter in the flow.
        """
        return [Setting(self._live, name) for name in self._list("setting", query)]

    def files(self, **query: Any) -> list[File]:
        """Every file, by name, as handles; see `settings`."""
        return [File(self._live, name) for name in self._list("file", query)]

    def get(self, field: str) -> Any:
        """Read a field of this execution, as `this.get(field)` (`'input_value'`, ...).

        Durability: creates a savepoint; replay returns the value read the first time.
        """
        return self._live.call("system.get", (field,), {})

    def get_own_user(self) -> User:
        """The user executions run as here: `.get('name')` is FLOWRT_USER (default 'flowrt').

        Durability: creates a savepoint; replay returns the user read the first time.
        """
        return User(self._live.call("system.get_own_user", (), {}))

    def get_own_client(self) -> Client:
        """The client executions run for here: `.get('name')` is FLOWRT_CLIENT_NAME (default
        'flowrt').

        Durability: creates a savepoint; replay returns the client read the first time.
        """
        return Client(self._live.call("system.get_own_client", (), {}))

    def execution(self, execution_id: str) -> ChildExecution:
        """A handle on the execution `execution_id`, any execution: it can be read (`get`,
        `load`), as the entries of `system.executions()`; only this execution's own
        children can be run, waited for, archived or deleted (`InvalidCallError`). An id
        that is not a UUID raises `InvalidCallError`, one of no execution `NotFoundError`.

        Durability: creates a savepoint; replay returns the same handle.
        """
        if not isinstance(execution_id, str) or not is_uuid(execution_id):
            raise InvalidCallError(
                f"system.execution({execution_id!r}): give the id of an execution (a UUID "
                "str), as child.id or this.get('id') give it"
            )
        ref = self._live.call("system.execution", (str(uuid.UUID(execution_id)),), {})
        return ChildExecution(self._live, ref)

    def get_env_name(self) -> str:
        """The name of this flowrt environment: FLOWRT_ENV_NAME (default 'flowrt').

        Durability: creates a savepoint; replay returns the name read the first time.
        """
        return self._live.call("system.get_env_name", (), {})  # type: ignore[no-any-return]

    def _list(self, kind: str, query: dict[str, Any]) -> list[str]:
        if query:
            raise InvalidCallError(
                f"system.{kind}s({', '.join(query)}=...): listings take no arguments here; "
                "list them all and pick in the flow"
            )
        return self._live.call(f"{kind}.list", (), {})  # type: ignore[no-any-return]


class _Record:
    """A named object stored outside the execution; restores do not roll it back."""

    kind = ""

    def __init__(self, live: LiveExecution, name: str) -> None:
        self._live, self.name = live, name

    def _check_name(self, method: str) -> None:
        check_name(f"{self.kind}.{method}", f"the {self.kind} name", self.name)

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name!r}>"

    def get(self, *fields: str, **options: Any) -> Any:
        """Read fields of the record: one field gives its value, several a tuple of theirs
        in the order asked (default: `'value'` of a setting, `'content'` of a file).

        Durability: creates a savepoint; replay returns the values read the first time.
        """
        return self._read("get", fields, options)

    def load(self, *fields: str, **options: Any) -> Any:
        """Read fields afresh from the database, as `get` (every read here is fresh).

        Durability: as `get`.
        """
        return self._read("load", fields, options)

    def _read(self, method: str, fields: tuple[str, ...], options: dict[str, Any]) -> Any:
        self._check_name(method)
        if set(options) - {"convert_binary"} or (self.kind != "file" and options):
            raise InvalidCallError(
                f"{self.kind}.{method}() takes field names only, not {', '.join(options)}="
            )
        for field in fields:
            if not isinstance(field, str):
                raise InvalidCallError(
                    f"{self.kind}.{method}({field!r}): a field name is a str, "
                    f"not {type(field).__name__}"
                )
        # One field (or none) keeps the argument shape of earlier journals.
        asked: Any = fields[0] if len(fields) == 1 else (fields or None)
        return self._live.call(f"{self.kind}.{method}", (self.name, asked), options)

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
    """A setting: a JSON `value` shared by all executions (`get('value')`, `save(value=...)`).

    A setting is also a lock: `acquire()` and `release()`.
    """

    kind = "setting"

    def acquire(self, timeout: float | None = None) -> None:
        """Take this setting's lock: no other execution holds it until this one releases it
        or ends (success, error, cancel); a setting that does not exist is created (value
        None). Holding it already, this returns at once (a lock is not counted).

        While another execution holds it, this waits as WAITING, holding no worker slot,
        until the lock is free; with `timeout` (seconds, 0 to 10 years) it raises
        `LockTimeoutError` once that much time has passed without getting it.

        Durability: creates a savepoint; performed at least once (taking a lock one holds is
        harmless). A restore does not give the lock back: like the setting, it is outside the
        execution, which holds it until `release()` or its end.
        """
        self._check_name("acquire")
        if timeout is not None:
            timeout = check_seconds("setting.acquire", timeout)
        self._live.call("setting.acquire", (self.name, timeout), {})
        self._live.state.held_locks.add(self.name)

    def release(self) -> None:
        """Give this setting's lock back and wake the executions waiting for it.

        Releasing a lock this execution does not hold raises `LockNotHeldError`, naming the
        holder if there is one.

        Durability: creates a savepoint; performed at least once: a release run again after
        a crash, which finds the lock free or taken by a waiter since, is no error. A
        restore does not take the lock again.
        """
        self._check_name("release")
        # Whether the flow took this lock, as its journal says: passed only when it did not.
        taken = self.name in self._live.state.held_locks
        self._live.call("setting.release", (self.name,), {} if taken else {"taken": False})
        self._live.state.held_locks.discard(self.name)

    def list_append(self, value: Any, max_list_length: int | None = None) -> None:
        """Append `value` to this setting's list; a setting that does not exist (or holds
        None) becomes `[value]`. With `max_list_length`, the oldest entries are dropped to
        keep at most that many. Appenders running at once lose nothing: each append reads
        and writes the list under the setting's row lock.

        A setting holding something else than a list raises `InvalidCallError` and is left
        as it is; a value JSON cannot hold `SerializationError` or `UnstorableValueError`.

        Durability: creates a savepoint; performed at least once: a step run again after a
        crash in the instant between the append and its commit appends a second time. A
        restore does not undo it.
        """
        self._check_name("list_append")
        check_json("setting.list_append", "value", value)
        options = {}
        if max_list_length is not None:
            call, what = "setting.list_append", "max_list_length"
            options[what] = check_count(call, what, max_list_length)
        self._live.call("setting.list_append", (self.name, value), options)


class File(_Record):
    """A file: `content` (text or bytes) shared by all executions (`save(content=...)`).

    Fields: `'content'` (as saved: str or bytes), `'text'` (the content as UTF-8 text),
    `'content_size_bytes'`, `'name'`, `'updated_at'`. `convert_binary=False` hands the
    content over base64-encoded, as Cloudomation's raw form: `get('content',
    convert_binary=False)` reads it so, and `save(content=b64, convert_binary=False)` stores
    the bytes it encodes.
    """

    kind = "file"

    def get(self, *fields: str, convert_binary: bool = True, **options: Any) -> Any:
        """Read fields of the file (see the class); durability as `setting.get`."""
        return self._read("get", fields, {**options, **_binary_option(convert_binary)})

    def load(self, *fields: str, convert_binary: bool = True, **options: Any) -> Any:
        """Read fields of the file afresh; as `get`."""
        return self._read("load", fields, {**options, **_binary_option(convert_binary)})

    def save(self, *, convert_binary: bool = True, **fields: Any) -> None:
        """Store `content=` (str or bytes; base64 text with `convert_binary=False`) or
        `text=` (a str).

        Durability: creates a savepoint; performed at least once; a restore does not undo it.
        """
        self._check_name("save")
        for field, value in fields.items():
            if field == "content" and isinstance(value, (bytes, bytearray)):
                continue
            if field == "text" and not isinstance(value, str):
                raise InvalidCallError(
                    f"file.save(text=...): text is a str, not {type(value).__name__}; "
                    "save bytes as content="
                )
            check_json("file.save", field, value)
        self._live.call("file.save", (self.name,), {**fields, **_binary_option(convert_binary)})

    def get_text_content(self) -> str:
        """The content as UTF-8 text (`get('text')`)."""
        return self.get("text")  # type: ignore[no-any-return]

    def get_bytes_content(self) -> bytes:
        """The content as bytes (text is encoded as UTF-8)."""
        content = self.get("content")
        return content.encode() if isinstance(content, str) else bytes(content)

    def get_base64_content(self) -> str:
        """The content base64-encoded (`get('content', convert_binary=False)`)."""
        return self.get("content", convert_binary=False)  # type: ignore[no-any-return]

    def save_text_content(self, text: str) -> None:
        """Store `text` as the content (`save(text=...)`)."""
        self.save(text=text)

    def save_bytes_content(self, content: bytes) -> None:
        """Store `content` (bytes) as the content."""
        self.save(content=content)

    def save_base64_content(self, content: str) -> None:
        """Store the bytes the base64 text `content` encodes."""
        self.save(content=content, convert_binary=False)


def _binary_option(convert_binary: object) -> dict[str, Any]:
    # Passed only when off: the calls of earlier journals had no such argument.
    if not isinstance(convert_binary, bool):
        raise InvalidCallError(
            f"convert_binary must be True or False, not {type(convert_binary).__name__}"
        )
    return {} if convert_binary else {"convert_binary": False}


class _Fixed:
    """A record of the platform whose fields came with the call that returned it."""

    kind = ""

    def __init__(self, fields: dict[str, Any]) -> None:
        self._fields = dict(fields)
        self.name: str = self._fields["name"]

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name!r}>"

    def get(self, *fields: str) -> Any:
        """One field's value (`'name'`), or a tuple of several; no call is made."""
        unknown = [field for field in fields if field not in self._fields]
        if unknown or not fields:
            raise InvalidCallError(
                f"{self.kind}.get({', '.join(map(repr, fields))}): a {self.kind} has the "
                f"fields {', '.join(map(repr, self._fields))}"
            )
        values = tuple(self._fields[field] for field in fields)
        return values[0] if len(values) == 1 else values

    load = get


class User(_Fixed):
    """The user executions run as (`system.get_own_user()`); its fields came with the call."""

    kind = "user"


class Client(_Fixed):
    """The client executions run for (`system.get_own_client()`); its fields came with the
    call."""

    kind = "client"


class Connection(_Record):
    """A stored connector, as a record: `get('value')` (its settings, credentials included:
    the flow may need them, flowrt never prints them), `get('connection_type')` ('REST', ...),
    `save(connection_type='REST', value={...})` (checked like `flowrt connector set`),
    `exists()`, `delete()`. `this.connect(name, ...)` uses it."""

    kind = "connection"

    def _read(self, method: str, fields: tuple[str, ...], options: dict[str, Any]) -> Any:
        answer = super()._read(method, fields, options)
        # The flow may print what it read: its credentials are masked wherever flowrt
        # stores or shows a log line, an error or a message from now on.
        for value in answer if isinstance(answer, tuple) else (answer,):
            self._live.learn_secrets(value)
        return answer

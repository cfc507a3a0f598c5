"""`system`: the platform around the execution, and the records stored on it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowrt.flow_api.children import ReturnWhen
from flowrt.values import check_json, check_name

if TYPE_CHECKING:
    from flowrt.live import LiveExecution


class System:
    """`system`: the platform around the execution: settings and files."""

    return_when = ReturnWhen

    def __init__(self, live: LiveExecution) -> None:
        self._live = live

    def setting(self, name: str) -> Setting:
        """A handle on the setting `name` (no call is made until you use it)."""
        return Setting(self._live, name)

    def file(self, name: str) -> File:
        """A handle on the file `name` (no call is made until you use it)."""
        return File(self._live, name)

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

"""`system.flow(name)`: a registered flow, as a record a flow can read, register or update."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowrt.errors import InvalidCallError
from flowrt.values import check_name, check_text

if TYPE_CHECKING:
    from flowrt.live import LiveExecution


class Flow:
    """A flow registered by name (`flowrt flow set`, or `save(script=...)` here).

    Its fields are `'script'` (the source), `'name'` and `'updated_at'`. Registered flows
    are outside every execution: a restore does not take a `save` or `delete` back.
    """

    def __init__(self, live: LiveExecution, name: str) -> None:
        self._live, self.name = live, name

    def __repr__(self) -> str:
        return f"<flow {self.name!r}>"

    def _check(self, method: str) -> None:
        check_name(f"flow.{method}", "the flow name", self.name)

    def get(self, *fields: str) -> Any:
        """Read `'script'` (the default), `'name'` or `'updated_at'`; several give a tuple.

        Durability: creates a savepoint; replay returns the value read the first time. A
        flow whose stored script or signature was altered raises `TamperedFlowError`.
        """
        self._check("get")
        values = self._live.call("flow.get", (self.name, fields or ("script",)), {})
        return values[0] if len(fields) <= 1 else tuple(values)

    load = get  # Cloudomation's fresh read; every read here is fresh

    def save(self, script: str | None = None, **fields: Any) -> None:
        """Register the flow `script=` under this name, or replace the one registered.

        The script is checked as `flowrt flow set` checks it (it must compile, its module
        body run and a `handler` be defined), else `ScriptError` is raised and nothing is
        stored; it is signed like every registered flow.

        Durability: creates a savepoint; performed at least once; a restore does not undo it.
        """
        self._check("save")
        if fields:
            raise InvalidCallError(f"flow.save() takes script= only, not {sorted(fields)}")
        if not isinstance(script, str):
            raise InvalidCallError(
                "flow.save(script=...): the script is the flow's source, a str, not "
                f"{type(script).__name__}"
            )
        check_text("flow.save", "the script", script)
        self._live.call("flow.save", (self.name,), {"script": script})

    def exists(self) -> bool:
        """True when a flow is registered under this name. Durability: creates a savepoint."""
        self._check("exists")
        return bool(self._live.call("flow.exists", (self.name,), {}))

    def delete(self) -> None:
        """Unregister the flow. Durability: creates a savepoint; a restore does not undo it.

        Executions of it keep running: each has its source pinned at its start.
        """
        self._check("delete")
        self._live.call("flow.delete", (self.name,), {})

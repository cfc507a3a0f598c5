"""Child executions as their parent sees them, and when waiting for them returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from flowrt.errors import InvalidCallError, SerializationError
from flowrt.values import check_json

if TYPE_CHECKING:
    from flowrt.live import LiveExecution


MAX_LISTED = 1000  # the most executions system.executions() lists at once


def check_limit(call: str, limit: object) -> int:
    """`limit` if it is a whole number from 1 to `MAX_LISTED`; raises `InvalidCallError`."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LISTED:
        raise InvalidCallError(f"{call}(limit={limit!r}): limit is a number from 1 to {MAX_LISTED}")
    return limit


class ReturnWhen(StrEnum):
    """When `wait_for` returns: `system.return_when.ALL_SUCCEEDED` (the default) and so on."""

    ALL_SUCCEEDED = "ALL_SUCCEEDED"  # every child ENDED_SUCCESS; a failed one raises
    ALL_ENDED = "ALL_ENDED"  # every child ended, however
    FIRST_ENDED = "FIRST_ENDED"  # at least one child ended


def check_return_when(call: str, value: Any) -> ReturnWhen:
    """`value` as a `ReturnWhen`; raises `InvalidCallError` naming the choices if it is none."""
    try:
        return ReturnWhen(value)
    except ValueError:
        choices = ", ".join(member.name for member in ReturnWhen)
        raise InvalidCallError(
            f"{call}(return_when={value!r}): use system.return_when.{{{choices}}}"
        ) from None


@dataclass(frozen=True)
class ChildRef:
    """What the journal keeps of a child execution: its id and flow."""

    id: str
    flow_name: str


class ChildExecution:
    """A child execution started by `this.flow()`, as its parent sees it.

    Also what `system.executions()` lists: any execution may be read (`get`, `load`); only
    the children of this execution may be run, waited for, archived or deleted.
    """

    def __init__(self, live: LiveExecution, ref: ChildRef) -> None:
        self._live, self.id, self.flow_name = live, ref.id, ref.flow_name

    def __repr__(self) -> str:
        return f"<child execution {self.id} of {self.flow_name!r}>"

    def get(self, field: str) -> Any:
        """Read the child's `'output_value'`, `'status'`, `'message'`, `'input_value'`,
        `'name'` (its own, else its flow's), `'flow_name'`, `'id'`, ...

        Durability: creates a savepoint; replay returns the value read the first time.
        """
        return self._live.call("child.get", (self.id, field), {})

    def load(self, *fields: str) -> Any:
        """Read several fields at once, fresh: one field gives its value, several a tuple.

        `status, message = child.load('status', 'message')`. Fields as for `get`.

        Durability: creates a savepoint; replay returns the values read the first time.
        """
        values = self._live.call("child.load", (self.id, fields), {})
        return values[0] if len(fields) == 1 else tuple(values)

    def run(self) -> ChildExecution:
        """Start a child created with `this.flow(..., run=False)` and wait until it ended.

        Returns this handle once it ended successfully; raises `DependencyFailedError` if it
        did not (as `wait=True` does). A child started already is only waited for.

        Durability: creates a savepoint; a step that runs again never starts the child a
        second time. While it waits, this execution is WAITING and holds no worker slot.
        """
        self._live.call("child.run", (self.id,), {})
        return self

    def run_async(self) -> ChildExecution:
        """Start a child created with `this.flow(..., run=False)` and return at once.

        Durability: creates a savepoint; a step that runs again never starts it twice.
        """
        self._live.call("child.run_async", (self.id,), {})
        return self

    def wait(self, return_when: str = ReturnWhen.ALL_SUCCEEDED) -> ChildExecution:
        """Wait for this child as `this.wait_for(child, return_when=...)` does; returns it.

        With `ALL_SUCCEEDED` (the default) a child that did not succeed raises
        `DependencyFailedError`; with `ALL_ENDED` or `FIRST_ENDED` it returns however the
        child ended (read `load('status')`).

        Durability: creates a savepoint; the wait holds no worker slot.
        """
        rule = check_return_when("child.wait", return_when)
        self._live.call("child.wait", (self.id, rule.value), {})
        return self

    def archive(self) -> None:
        """Delete the savepoints of this ended child; its status, outputs and logs stay.

        Durability: creates a savepoint; performed at least once; a restore does not undo it.
        A child that has not ended raises `InvalidCallError`.
        """
        self._live.call("child.archive", (self.id,), {})

    def delete(self) -> None:
        """Delete this ended child, with its own children, savepoints and logs.

        Durability: creates a savepoint; performed at least once (a step that runs again
        finds it gone and returns); a restore does not bring it back. A child, or a child of
        it, that has not ended raises `InvalidCallError` and nothing is deleted.
        """
        self._live.call("child.delete", (self.id,), {})


def wait_rule(wait: object) -> bool | str:
    """What `this.flow(wait=...)` asks: False (no wait), True (until it succeeded, else
    `DependencyFailedError`), or `'ALL_ENDED'` / `'FIRST_ENDED'` (until it ended, however)."""
    if wait is None or isinstance(wait, bool):
        return bool(wait)
    if isinstance(wait, str) and wait in ReturnWhen.__members__.values():
        rule = ReturnWhen(wait)
        return True if rule is ReturnWhen.ALL_SUCCEEDED else rule.value
    raise InvalidCallError(
        f"this.flow(wait={wait!r}): wait takes True, False or "
        "system.return_when.ALL_SUCCEEDED / ALL_ENDED / FIRST_ENDED"
    )


def merge_inputs(parts: Mapping[str, object]) -> dict[str, Any] | None:
    """One dict of a child's inputs from `parts` (`inputs=`, `input_value=`, the keyword
    arguments), each a dict or None; a key given in two of them raises `InvalidCallError`."""
    merged: dict[str, Any] | None = None
    given_in: dict[str, str] = {}
    for what, part in parts.items():
        if part is None:
            continue
        if not isinstance(part, dict):
            raise SerializationError("flow", f"{what} must be a dict, not {type(part).__name__}")
        plain = check_json("flow", what, part)
        merged = {} if merged is None else merged
        for key, value in plain.items():
            if key in given_in:
                raise InvalidCallError(
                    f"this.flow(): the input {key!r} is given twice, in {given_in[key]} and "
                    f"in {what}; give it once"
                )
            given_in[key], merged[key] = what, value
    return merged

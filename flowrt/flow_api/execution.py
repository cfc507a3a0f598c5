"""`this`: the running execution, as the flow sees it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from flowrt.errors import InvalidCallError
from flowrt.flow_api.children import ChildExecution, ReturnWhen
from flowrt.status import Status
from flowrt.values import check_json, check_name, check_seconds, check_text, check_timestamp

if TYPE_CHECKING:
    from flowrt.live import LiveExecution

# What `this.end(status)` accepts, lower-cased: Cloudomation's words and the status names.
END_STATUSES = {
    "success": Status.ENDED_SUCCESS,
    "error": Status.ENDED_ERROR,
    "cancelled": Status.ENDED_CANCELLED,
    "ended_success": Status.ENDED_SUCCESS,
    "ended_error": Status.ENDED_ERROR,
    "ended_cancelled": Status.ENDED_CANCELLED,
}
END_STATUS_CHOICES = "the status is 'success', 'error' or 'cancelled' (or 'ENDED_SUCCESS', ...)"


@dataclass(frozen=True)
class SavepointInfo:
    """What `save_dump` returns: the savepoint's id, name, place, and how often it was restored."""

    id: str
    name: str | None
    seq: int
    line: int
    restored: int


@dataclass(frozen=True)
class ConnectorResult:
    """The answer of `connect`; `.get('output_value')` is the connector's output dict."""

    output_value: dict[str, Any]

    def get(self, field: str) -> Any:
        """Return `'output_value'` (the connector's output) or `'status'` (always ended)."""
        if field == "output_value":
            return self.output_value
        if field == "status":
            return "ENDED_SUCCESS"
        raise KeyError(f"a connector result has 'output_value' and 'status', not {field!r}")


class Execution:
    """`this`: the running execution, as the flow sees it."""

    def __init__(self, live: LiveExecution) -> None:
        self._live = live

    def connect(self, name: str, **params: Any) -> ConnectorResult:
        """Call the connector `name` with `params` (SQL: fetch/execute; REST: method, path, ...).

        Durability: creates a savepoint, then performs the call in a step; replay returns the
        recorded result without calling again. A call in flight when its worker dies runs
        again (at-least-once) with the same idempotency key. Blocks for the call's duration.
        """
        check_name("connect", "the connector name", name)
        return ConnectorResult(self._live.call("connect", (name,), params))

    def log(self, *args: Any, **fields: Any) -> None:
        """Append a line to the execution's log: the arguments, then `key=value` for each
        keyword argument, its value as JSON (`this.log('done', rows=3)` logs `done rows=3`).

        Durability: creates a savepoint; the log line is written once per committed step,
        and is kept by restores and archiving. Replay writes nothing. A line holding a NUL
        character or a lone surrogate raises `UnstorableValueError` and is not written.
        """
        parts = tuple(str(a) for a in args)
        parts += tuple(f"{key}={_rendered(value)}" for key, value in fields.items())
        check_text("log", "the log line", " ".join(parts))
        self._live.call("log", parts, {})

    def get(self, field: str) -> Any:
        """Read `'input_value'`, `'output_value'`, `'status'`, `'message'`, `'id'` or `'name'`.

        Durability: creates a savepoint; replay returns the value read the first time.
        """
        return self._live.call("get", (field,), {})

    def save(self, **fields: Any) -> None:
        """Store `output_value=` (a JSON object) and/or `message=` on the execution.

        Durability: creates a savepoint; the new outputs are part of the execution's state, so a
        restore to an earlier savepoint brings the earlier outputs back. Outputs holding NaN,
        Infinity, NUL or lone surrogates raise `UnstorableValueError` and change nothing.
        """
        if fields.get("message") is not None:
            check_text("save", "message", str(fields["message"]))
        if "output_value" in fields:
            check_json("save", "output_value", fields["output_value"])
        answer = self._live.call("save", (), fields)
        self._live.state.outputs = answer["output_value"]
        self._live.state.message = answer["message"]

    def set_output(self, *pair: Any, **pairs: Any) -> None:
        """Merge outputs into the execution's `output_value`: `set_output('key', value)` or
        `set_output(key=value, ...)`; other keys stay (`save(output_value=)` replaces all).

        Durability: creates a savepoint; outputs are part of the execution's state, so a
        restore to an earlier savepoint brings the earlier outputs back. A value JSON cannot
        hold raises `SerializationError`, one holding NaN or NUL `UnstorableValueError`.
        """
        if pair:
            if len(pair) != 2 or not isinstance(pair[0], str):
                raise InvalidCallError(
                    "this.set_output() takes a key (a str) and a value, or key=value pairs, "
                    f"not {len(pair)} positional argument(s)"
                )
            pairs = {pair[0]: pair[1], **pairs}
        if not pairs:
            raise InvalidCallError("this.set_output() takes a key and a value, or key=value")
        for key in pairs:
            check_text("set_output", "an output key", key)
        pairs = check_json("set_output", "output_value", pairs)
        answer = self._live.call("set_output", (pairs,), {})
        self._live.state.outputs = answer["output_value"]

    def end(self, status: str, message: str | None = None) -> NoReturn:
        """End the execution with `status`: `'success'`, `'error'` or `'cancelled'` (or
        `'ENDED_SUCCESS'`, ... by name), and `message`; `except Exception` cannot stop it.

        An unknown status raises `InvalidCallError` and ends nothing. Durability: as
        `success`. Never returns.
        """
        if not isinstance(status, str) or status.lower() not in END_STATUSES:
            raise InvalidCallError(f"this.end({status!r}): {END_STATUS_CHOICES}")
        if message is not None:
            check_text("end", "message", str(message))
            message = str(message)
        self._live.call("end", (status, message), {})
        raise AssertionError("unreachable: end() ends the execution")

    def success(self, message: str | None = None) -> NoReturn:
        """End the execution with ENDED_SUCCESS; `except Exception` cannot stop this.

        Durability: creates a savepoint (restoring it ends the execution again). Never returns.
        """
        if message is not None:
            check_text("success", "message", str(message))
        self._live.call("success", (message,), {})
        raise AssertionError("unreachable: success() ends the execution")

    def error(self, message: str) -> NoReturn:
        """End the execution with ENDED_ERROR and `message`; its savepoints stay restorable.

        Durability: creates a savepoint. Never returns.
        """
        check_text("error", "message", str(message))
        self._live.call("error", (message,), {})
        raise AssertionError("unreachable: error() ends the execution")

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`; the execution is WAITING meanwhile and holds no worker slot.

        Durability: creates a savepoint; the wake-up time is fixed when the sleep is first
        performed, so a restarted step does not sleep again from the start. Replay skips it.
        `seconds` must be a finite number from 0 to `flowrt.values.MAX_SLEEP_S` (10 years),
        else `InvalidCallError` is raised at once.
        """
        self._live.call("sleep", (check_seconds("sleep", seconds),), {})

    def sleep_until(self, when: datetime | float) -> None:
        """Wait until `when` (an aware datetime or a Unix timestamp); see `sleep`.

        Durability: as `sleep`. A time more than 10 years ahead raises `InvalidCallError`.
        """
        timestamp = when.timestamp() if isinstance(when, datetime) else when
        self._live.call("sleep_until", (check_timestamp("sleep_until", timestamp),), {})

    def flow(
        self, name_or_path: str, inputs: dict[str, Any] | None = None, wait: bool = True
    ) -> ChildExecution:
        """Start a child execution of a registered flow (or a .py path the workers can read).

        With `wait=True` this returns once the child ended successfully, and raises
        `DependencyFailedError` if it did not; with `wait=False` it returns at once. Either
        way it returns the child's handle: `.get('output_value')` reads its outputs.

        Durability: creates a savepoint; a step that runs again finds the child it started
        rather than starting another. While it waits, the parent holds no worker slot.
        """
        if isinstance(name_or_path, str):
            check_text("flow", "the flow name", name_or_path)
        if inputs is not None:
            check_json("flow", "inputs", inputs)
        ref = self._live.call("flow", (name_or_path, inputs, bool(wait)), {})
        return ChildExecution(self._live, ref)

    def wait_for(
        self, *children: ChildExecution, return_when: str = ReturnWhen.ALL_SUCCEEDED
    ) -> list[ChildExecution]:
        """Wait for child executions; returns those that have ended.

        `return_when` is one of `system.return_when.ALL_SUCCEEDED` (a child that did not
        succeed raises `DependencyFailedError`), `ALL_ENDED` or `FIRST_ENDED`.

        Durability: creates a savepoint; the wait holds no worker slot, and after
        FLOWRT_SLEEP_MAX_SECONDS the execution is unloaded until a child ends.
        """
        ids = tuple(child.id if isinstance(child, ChildExecution) else child for child in children)
        refs = self._live.call("wait_for", (ids, str(return_when)), {})
        return [ChildExecution(self._live, ref) for ref in refs]

    def pause(self) -> None:
        """Pause this execution before its next call; `flowrt resume ID` lets it go on.

        Durability: creates a savepoint; the execution is PAUSED and unloaded until resumed.
        """
        self._live.call("pause", (), {})

    def save_dump(self, name: str | None = None) -> SavepointInfo:
        """Create an explicit savepoint, optionally named, and describe it.

        Durability: is a savepoint. When the execution is restored to it, `save_dump` returns
        again (like `setjmp`) with `restored` counted up, so a flow can stop retrying. A name
        is a str of at most 200 characters (`InvalidCallError`, `UnstorableValueError`).
        """
        if name is not None:
            check_name("save_dump", "the savepoint name", name)
        return self._live.call("save_dump", (name,), {}, label=name)  # type: ignore[no-any-return]

    def load_dump(self, ref: str, by: str = "id") -> NoReturn:
        """Restore this execution to the savepoint `ref` (by `'id'` or `'name'`); never returns.

        Durability: creates a savepoint, then restores: every variable is back as it was at
        `ref`, and that savepoint's call runs again. A name means the newest savepoint of that
        name on the current timeline. Settings, files and outside systems are not rolled back.
        """
        check_text("load_dump", "the savepoint ref", str(ref))
        self._live.call("load_dump", (str(ref), by), {})
        raise AssertionError("unreachable: load_dump() restores the execution")


def _rendered(value: Any) -> str:
    # JSON where it can be (a str quoted, a tuple as a list), else the value's repr.
    try:
        return json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError, RecursionError):
        return repr(value)

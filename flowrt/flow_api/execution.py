"""`this`: the running execution, as the flow sees it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from flowrt.errors import InvalidCallError
from flowrt.flow_api.children import (
    ChildExecution,
    ReturnWhen,
    check_return_when,
    merge_inputs,
    wait_rule,
)
from flowrt.flow_api.connections import ConnectionExecution, open_connection
from flowrt.flow_api.unsupported import refuse
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


ConnectorResult = ConnectionExecution  # its name before connections had a status and could wait


class Execution:
    """`this`: the running execution, as the flow sees it."""

    def __getattr__(self, name: str) -> Any:
        # Only for names the class lacks: Cloudomation's calls flowrt has not say so.
        if name.startswith("_"):
            raise AttributeError(name)
        refuse("this", name)

    def __init__(self, live: LiveExecution) -> None:
        self._live = live

    def connect(self, connector_name: str | None = None, /, **params: Any) -> ConnectionExecution:
        """Make a connection: with the stored connector `connector_name` and `params` (SQL:
        fetch/execute; REST: method, path, ...; a parameter naming one of its settings
        overrides it for this call), or inline with `connector_type='REST'` (or SQL, SMTP, ...)
        and all its parameters, also given as `input_value={...}`.

        `name=` names the connection (`.get('name')`). `wait=` is True (the default: a
        failed connection raises its `ConnectorError`), or `system.return_when.ALL_ENDED`
        (or another rule than ALL_SUCCEEDED) or False, which return the connection whatever
        happened: `.get('status')` is then `ENDED_ERROR` and `.get('message')` the error.
        `run=False` returns the connection without making it, for `.run()` / `.run_async()`.
        A type flowrt has no connector for (GOOGLE, AWS, VAULT, ...) raises
        `UnsupportedConnectionError`; parameters the type cannot use `InvalidCallError`.

        Durability: creates a savepoint, then performs the call in a step; replay returns the
        recorded result without calling again. A call in flight when its worker dies runs
        again (at-least-once) with the same idempotency key. Blocks for the call's duration.
        With `run=False` no call is made until `.run()`.
        """
        return open_connection(self._live, "connect", connector_name, params)

    def task(
        self,
        connector_type: str | None = None,
        inputs: dict[str, Any] | None = None,
        /,
        **params: Any,
    ) -> ConnectionExecution:
        """Make an inline connection: Cloudomation's older name for
        `connect(connector_type=connector_type, input_value=inputs, **params)`, as in
        `this.task('REST', url=..., method='post', json=...)`.

        Durability: as `connect`.
        """
        if inputs is not None:
            if not isinstance(inputs, dict):
                raise InvalidCallError(
                    f"task({connector_type!r}, inputs): inputs must be a dict of parameters, "
                    f"not {type(inputs).__name__}"
                )
            params = {**inputs, **params}
        if connector_type is not None:
            if "connector_type" in params:
                raise InvalidCallError("task() takes the connection type once, not twice")
            params["connector_type"] = connector_type
        elif "connector_type" not in params:
            raise InvalidCallError(
                "task() needs a connection type first: this.task('REST', url=...)"
            )
        return open_connection(self._live, "task", None, params)

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

    def get(self, field: str, *fields: str) -> Any:
        """Read `'input_value'`, `'output_value'`, `'status'`, `'message'`, `'id'`, `'name'`
        (the execution's name: its own, else its flow's), `'flow_name'`, `'client_name'`
        (FLOWRT_CLIENT_NAME) or `'user_name'` (FLOWRT_USER). One field gives its value,
        several a tuple of theirs in the order asked: `client, user = this.get('client_name',
        'user_name')`. A field that is not one of these raises `InvalidCallError`.

        Durability: creates a savepoint; replay returns the values read the first time.
        """
        if not fields:
            return self._live.call("get", (field,), {})  # the argument shape of earlier journals
        asked = (field, *fields)
        for one in asked:
            if not isinstance(one, str):
                raise InvalidCallError(
                    f"this.get({one!r}): a field name is a str, not {type(one).__name__}"
                )
        return tuple(self._live.call("get", (asked,), {}))

    def save(self, **fields: Any) -> None:
        """Store `output_value=` (a JSON object), `message=` and/or `name=` on the execution.

        Durability: creates a savepoint; the new outputs are part of the execution's state, so a
        restore to an earlier savepoint brings the earlier outputs back. Outputs holding NaN,
        Infinity, NUL or lone surrogates raise `UnstorableValueError` and change nothing.
        `name=` renames the execution (None: back to its flow's name); a name is a label for
        people, outside the timeline: a restore does not take it back.
        """
        if fields.get("name") is not None:
            check_name("save", "the name", fields["name"])
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
        self,
        name_or_path: str,
        inputs: dict[str, Any] | None = None,
        wait: bool | str = True,
        *,
        name: str | None = None,
        run: bool = True,
        input_value: dict[str, Any] | None = None,
        **input_kwargs: Any,
    ) -> ChildExecution:
        """Start a child execution of a registered flow (or a .py path the workers can read).

        Its inputs are `inputs=`, `input_value=` and every other keyword argument, merged
        (`this.flow('deploy', region='eu')`); a key given twice raises `InvalidCallError`.
        `name=` names the child execution. `wait=True` returns once the child ended
        successfully and raises `DependencyFailedError` if it did not;
        `wait=system.return_when.ALL_ENDED` returns once it ended, however; `wait=False`
        returns at once. `run=False` creates the child PAUSED without starting it, for
        `child.run()` or `child.run_async()`. It returns the child's handle either way.

        Durability: creates a savepoint; a step that runs again finds the child it started
        rather than starting another. While it waits, the parent holds no worker slot.
        """
        if isinstance(name_or_path, str):
            check_text("flow", "the flow name", name_or_path)
        if name is not None:
            check_name("flow", "the execution name", name)
        if not isinstance(run, bool):
            raise InvalidCallError(f"this.flow(run={run!r}): run is True or False")
        given = {
            "inputs": inputs,
            "input_value": input_value,
            "keyword arguments": input_kwargs or None,
        }
        rule, merged = wait_rule(wait), merge_inputs(given)
        # Only what differs from the defaults: the call's digest stays that of earlier flowrt.
        options = {k: v for k, v in (("name", name), ("run", run)) if v not in (None, True)}
        ref = self._live.call("flow", (name_or_path, merged, rule), options)
        return ChildExecution(self._live, ref)

    def wait_for(
        self,
        *children: ChildExecution | ConnectionExecution,
        return_when: str = ReturnWhen.ALL_SUCCEEDED,
    ) -> list[ChildExecution | ConnectionExecution]:
        """Wait for child executions (and connections); returns those that have ended.

        `return_when` is one of `system.return_when.ALL_SUCCEEDED` (a child that did not
        succeed raises `DependencyFailedError`), `ALL_ENDED` or `FIRST_ENDED`. Connections
        (`this.task(...)`) are waited for first, one after the other: all but an INPUT have
        ended already, since flowrt makes a connection inside its step.

        Durability: creates a savepoint; the wait holds no worker slot, and after
        FLOWRT_SLEEP_MAX_SECONDS the execution is unloaded until a child ends.
        """
        rule = check_return_when("wait_for", return_when)
        connections = [c for c in children if isinstance(c, ConnectionExecution)]
        for connection in connections:
            connection.wait(ReturnWhen.ALL_ENDED)
        for connection in connections:
            connection.wait(rule)  # raises the error of a failed one under ALL_SUCCEEDED
        ended: list[ChildExecution | ConnectionExecution] = list(connections)
        ids = tuple(
            child.id if isinstance(child, ChildExecution) else child
            for child in children
            if not isinstance(child, ConnectionExecution)
        )
        if (ids or not connections) and not (connections and rule is ReturnWhen.FIRST_ENDED):
            refs = self._live.call("wait_for", (ids, rule.value), {})
            ended += [ChildExecution(self._live, ref) for ref in refs]
        return ended

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

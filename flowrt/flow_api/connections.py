"""Connections as the flow sees them: what `this.connect()` and `this.task()` return.

A connection in flowrt is performed inside the step that reaches it (it is not an execution of
its own, as in Cloudomation); its handle keeps what Cloudomation's connection execution shows:
status, outputs, message and name.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from flowrt.errors import (
    ConnectorError,
    FlowApiError,
    HttpStatusError,
    InvalidCallError,
    UnsupportedConnectionError,
)
from flowrt.flow_api.children import ReturnWhen
from flowrt.flow_api.unsupported import refuse
from flowrt.status import Status
from flowrt.values import check_name

if TYPE_CHECKING:
    from flowrt.live import LiveExecution

_FIELDS = ("output_value", "status", "message", "name", "input_value")


class ConnectionExecution:
    """A connection made by `this.connect()` or `this.task()`.

    `.get(field)` / `.load(*fields)` read `'output_value'` (the connector's output dict),
    `'status'` (`ENDED_SUCCESS`, `ENDED_ERROR`, or `PAUSED` while not run), `'message'` (the
    error of a failed connection), `'name'` and `'input_value'` (the parameters it was given).
    """

    def __getattr__(self, name: str) -> Any:
        # Only for names the class lacks: Cloudomation's calls flowrt has not say so.
        if name.startswith("_"):
            raise AttributeError(name)
        refuse("connection", name)

    def __init__(
        self,
        live: LiveExecution,
        connector: str | None,
        params: dict[str, Any],
        *,
        name: str | None = None,
        return_when: ReturnWhen = ReturnWhen.ALL_SUCCEEDED,
    ) -> None:
        self._live, self._connector, self._params = live, connector, params
        self.name, self._return_when = name, return_when
        self._status = Status.PAUSED  # created, not run (run=False)
        self._output: dict[str, Any] | None = None
        self._error: FlowApiError | None = None

    def __repr__(self) -> str:
        what = self._connector or f"inline {self._params.get('connector_type')}"
        return f"<connection {self.name or what!r} {self._status.value}>"

    def get(self, field: str) -> Any:
        """One field of the connection, as it stands in the flow (no call: its outcome was
        recorded by the call that performed it)."""
        if field not in _FIELDS:
            raise InvalidCallError(
                f"connection.get({field!r}): the fields are {', '.join(map(repr, _FIELDS))}"
            )
        if field == "input_value":
            return {k: copy.deepcopy(v) for k, v in self._params.items() if k != "connector_type"}
        return {
            "output_value": self._output,
            "status": self._status.value,
            "message": None if self._error is None else str(self._error),
            "name": self.name,
        }[field]

    def load(self, *fields: str) -> Any:
        """Read several fields at once: one field gives its value, several a tuple."""
        if not fields:
            raise InvalidCallError(f"connection.load() needs a field: one of {', '.join(_FIELDS)}")
        values = tuple(self.get(field) for field in fields)
        return values[0] if len(values) == 1 else values

    def run(self) -> ConnectionExecution:
        """Perform a connection made with `run=False`, and return it once done; with
        `wait=ALL_SUCCEEDED` (the default) a failed connection raises its `ConnectorError`.

        Durability: creates a savepoint, then performs the connection in a step (at least
        once, with a stable idempotency key); replay returns the recorded outcome.
        """
        self._perform()
        return self._settle(self._return_when)

    def run_async(self) -> ConnectionExecution:
        """Perform a connection made with `run=False`. flowrt performs a connection inside its
        step, so this returns once the connection is done; it never raises for a failed
        connection (its status is ENDED_ERROR): `.wait()` does.

        Durability: as `run`.
        """
        self._perform()
        return self

    def wait(self, return_when: str = ReturnWhen.ALL_SUCCEEDED) -> ConnectionExecution:
        """Return this connection once it ended; with `return_when=ALL_SUCCEEDED` (the
        default) a failed one raises its `ConnectorError`. No call: it ended already."""
        rule = parse_wait("connection.wait", return_when)
        if self._status is Status.PAUSED:
            raise InvalidCallError(
                "connection.wait(): this connection was made with run=False and has not run; "
                "call .run() or .run_async() first"
            )
        return self._settle(rule)

    def _perform(self) -> None:
        if self._status is not Status.PAUSED:
            # It ran already (this.task(...) runs it unless run=False): as in Cloudomation's
            # `this.task(...).run_async()`, running it again returns it as it ended.
            return
        try:
            self._output = self._live.call("connect", (self._connector,), self._params)
        except UnsupportedConnectionError:
            raise  # not a connection that failed: one flowrt cannot make
        except ConnectorError as error:
            self._status, self._error = Status.ENDED_ERROR, error
            if isinstance(error, HttpStatusError):  # the answer is there, only not a success
                self._output = {"status_code": error.status_code, "text": error.body}
            return
        self._status = Status.ENDED_SUCCESS

    def _settle(self, rule: ReturnWhen) -> ConnectionExecution:
        if self._error is not None and rule is ReturnWhen.ALL_SUCCEEDED:
            raise self._error
        return self


def open_connection(
    live: LiveExecution, call: str, connector: str | None, params: dict[str, Any]
) -> ConnectionExecution:
    """Make the connection `this.connect()` / `this.task()` asked for: check its arguments,
    and perform it unless `run=False`."""
    name, wait, run = params.pop("name", None), params.pop("wait", True), params.pop("run", True)
    if name is not None:
        check_name(call, "the connection name", name)
    if not isinstance(run, bool):
        raise InvalidCallError(f"{call}(run={run!r}): run must be True or False")
    rule = ReturnWhen.ALL_SUCCEEDED if isinstance(wait, bool) else parse_wait(call, wait)
    params = {**_inputs(call, params), **params}
    connector_type = params.pop("connector_type", None)
    if connector is not None and connector_type is not None:
        raise InvalidCallError(
            f"{call}({connector!r}, connector_type={connector_type!r}): give a stored "
            "connector's name or an inline connector_type=, not both"
        )
    if connector is None and connector_type is None:
        raise InvalidCallError(
            f"{call}() needs a stored connector's name (first, positionally) or "
            "connector_type='REST' (or another type) with its parameters; name= is the "
            "connection's own name"
        )
    if connector is not None:
        check_name(call, "the connector name", connector)
    else:
        check_name(call, "connector_type", connector_type)
        params = {"connector_type": connector_type, **params}
    connection: ConnectionExecution
    if str(connector_type).upper() == "INPUT":
        from flowrt.flow_api.inputs import InputConnection  # it builds on this module

        connection = InputConnection(live, params, name=name, return_when=rule)
    else:
        connection = ConnectionExecution(live, connector, params, name=name, return_when=rule)
    if run:
        connection.run_async()
        if wait is not False:
            connection.wait(rule)
    return connection


def parse_wait(call: str, wait: object) -> ReturnWhen:
    """The rule `wait=` or `return_when=` names: a `system.return_when` member (or its name)."""
    try:
        if not isinstance(wait, str):
            raise ValueError(wait)
        return ReturnWhen(wait)
    except ValueError:
        choices = ", ".join(member.name for member in ReturnWhen)
        raise InvalidCallError(
            f"{call}: wait/return_when={wait!r}: use True, False or "
            f"system.return_when.{{{choices}}}"
        ) from None


def _inputs(call: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters given as a dict (`input_value=`, `inputs=`, or `task`'s second argument)."""
    merged: dict[str, Any] = {}
    for key in ("inputs", "input_value"):
        given = params.pop(key, None)
        if given is None:
            continue
        if not isinstance(given, dict):
            raise InvalidCallError(
                f"{call}({key}=...) takes a dict of parameters, not {type(given).__name__}"
            )
        merged.update(given)
    return merged

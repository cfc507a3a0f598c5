"""Cloudomation's INPUT connection: `this.task('INPUT', request=...)` asks people, as a message.

flowrt has no INPUT connector: the request becomes a message with a one-field form (see
`system.message`), answered with `flowrt respond ID --response '{"response": ...}'`, and the
connection's output is `{'response': ..., 'reference': ...}` as Cloudomation's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowrt.errors import InvalidCallError, MessageResponseTimeoutError
from flowrt.flow_api.children import ReturnWhen
from flowrt.flow_api.connections import ConnectionExecution, parse_wait
from flowrt.flow_api.messages import Message
from flowrt.forms import check_form, subject_text
from flowrt.status import Status
from flowrt.values import check_seconds, check_text

if TYPE_CHECKING:
    from flowrt.live import LiveExecution

INPUT_TYPE = "INPUT"
# What an INPUT connection takes; `init` (Cloudomation's options of the task execution, such
# as protect_outputs) has no meaning here and is accepted and left unused.
_PARAMS = ("request", "reference", "timeout", "type", "init")
# The answer's JSON type for each `type=` Cloudomation's INPUT takes, and how it is shown.
_TYPES = {
    "string": ("string", "string"),
    "password": ("string", "password"),
    "number": ("number", "number"),
}
_SUBJECT_CHARS = 200


class InputConnection(ConnectionExecution):
    """`this.task('INPUT', request='...')`: a question to people; `.get('output_value')` is
    `{'response': ..., 'reference': ...}` once someone answered.

    `run_async()` sends the question and returns; `wait()` (or `run()`, or the default
    `run=True`) waits for the answer as WAITING, holding no worker slot. With `timeout=` (in
    seconds) a question nobody answered in time ends the connection ENDED_ERROR, which
    `wait(ALL_SUCCEEDED)` raises as `MessageResponseTimeoutError`.
    """

    def __init__(
        self,
        live: LiveExecution,
        params: dict[str, Any],
        *,
        name: str | None = None,
        return_when: ReturnWhen = ReturnWhen.ALL_SUCCEEDED,
    ) -> None:
        super().__init__(live, None, params, name=name, return_when=return_when)
        self._message: Message | None = None
        self._form, self._subject, self._timeout = _question(params)

    def run(self) -> InputConnection:
        """Ask, and wait for the answer. Durability: a savepoint for each, as `run_async`
        and `wait`."""
        self.run_async()
        return self.wait(self._return_when)

    def run_async(self) -> InputConnection:
        """Send the question and return at once.

        Durability: creates a savepoint; the message is stored once (a re-run step finds it).
        """
        if self._message is not None:
            return self  # asked already (this.task('INPUT', ...) asks unless run=False)
        form = (self._subject, "POPUP", self._form)
        self._message = Message(self._live, self._live.call("message", form, {}))
        self._status = Status.RUNNING
        return self

    def wait(self, return_when: str = ReturnWhen.ALL_SUCCEEDED) -> InputConnection:
        """Wait for the answer; returns this connection. A timeout passed raises under
        ALL_SUCCEEDED (the default) and ends the connection ENDED_ERROR otherwise.

        Durability: creates a savepoint; WAITING meanwhile, holding no worker slot.
        """
        rule = parse_wait("INPUT.wait", return_when)
        if self._message is None:
            raise InvalidCallError(
                "INPUT.wait(): this INPUT was made with run=False and was not asked; call "
                ".run() or .run_async() first"
            )
        if self._status is Status.RUNNING:
            try:
                response = self._message.wait(self._timeout).get("response")
            except MessageResponseTimeoutError as error:
                self._status, self._error = Status.ENDED_ERROR, error
            else:
                self._output = {"response": response.get("response"), **self._reference()}
                self._status = Status.ENDED_SUCCESS
        if self._error is not None and rule is ReturnWhen.ALL_SUCCEEDED:
            raise self._error
        return self

    def _reference(self) -> dict[str, Any]:
        return {"reference": self._params["reference"]} if "reference" in self._params else {}


def _question(params: dict[str, Any]) -> tuple[dict[str, Any], str, float | None]:
    call = "task('INPUT')"
    unknown = sorted(set(params) - set(_PARAMS) - {"connector_type"})
    if unknown:
        raise InvalidCallError(
            f"an INPUT connection takes no parameter {', '.join(map(repr, unknown))}; it takes "
            f"{', '.join(_PARAMS)}"
        )
    request = params.get("request")
    if not isinstance(request, str) or not request.strip():
        raise InvalidCallError(f"{call} needs request=, the question to ask (a non-empty str)")
    check_text(call, "request", request)
    kind = params.get("type", "string")
    if kind not in _TYPES:
        raise InvalidCallError(f"{call}(type={kind!r}): use one of {', '.join(_TYPES)}")
    timeout = params.get("timeout")
    timeout_s = None if timeout is None else check_seconds(call, timeout)
    json_type, element = _TYPES[kind]
    field = {"type": json_type, "element": element, "label": request, "order": 1}
    form = {"type": "object", "properties": {"response": field}, "required": ["response"]}
    first_line = request.strip().splitlines()[0]
    subject = first_line if len(first_line) <= _SUBJECT_CHARS else first_line[:199] + "…"
    return check_form(call, form), subject_text(call, subject), timeout_s

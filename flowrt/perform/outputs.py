"""Calls that shape the execution's result: `set_output` merges outputs, `end` ends it."""

from __future__ import annotations

from typing import Any

from flowrt.errors import InvalidCallError
from flowrt.flow_api.execution import END_STATUS_CHOICES, END_STATUSES
from flowrt.perform.base import End, Result, StepContext, done, json_value, performer


@performer("set_output")
def _set_output(context: StepContext, pairs: dict[str, Any]) -> Result:
    if not isinstance(pairs, dict) or not pairs:
        raise InvalidCallError("this.set_output() takes a key and a value, or key=value pairs")
    outputs = json_value("set_output", "output_value", {**context.live.state.outputs, **pairs})
    return done({"output_value": outputs}, outputs=outputs)


@performer("end")
def _end(context: StepContext, status: str, message: str | None) -> Result:
    found = END_STATUSES.get(status.lower()) if isinstance(status, str) else None
    if found is None:
        raise InvalidCallError(f"this.end({status!r}): {END_STATUS_CHOICES}")
    return End(found, None if message is None else str(message))

"""Calls on the execution itself: log, get, save, pause, success, error, sleep."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from flowrt.calls import Outcome
from flowrt.errors import InvalidCallError, SerializationError
from flowrt.perform.base import Answer, End, Result, StepContext, Wait, done, json_value, performer
from flowrt.status import Status
from flowrt.storage.base import LogRecord
from flowrt.values import check_name, check_seconds, check_wake


@performer("log")
def _log(context: StepContext, *parts: str) -> Result:
    live, call = context.live, context.live.pending
    line = call.line if call else 0
    seq = live.head.seq if live.head else 0
    text = live.masked(" ".join(parts)) or ""
    record = LogRecord(live.execution_id, seq, line, context.now, text)
    return Answer(Outcome(), logs=(record,))


@performer("get")
def _get(context: StepContext, field: str | list[str]) -> Result:
    if isinstance(field, (tuple, list)):  # this.get(field, field, ...): a list of the values
        if not field:
            raise InvalidCallError("this.get() needs a field name: this.get('input_value')")
        return done([_field(context, one) for one in field])
    return done(_field(context, field))


def _field(context: StepContext, field: str) -> Any:
    live, state = context.live, context.live.state
    fields = {
        # Copies: the answer is the flow's to change, the execution's state is not.
        "input_value": lambda: copy.deepcopy(state.inputs),
        "output_value": lambda: copy.deepcopy(state.outputs),
        "status": lambda: live.status.value,
        "message": lambda: state.message,
        "id": lambda: live.execution_id,
        # Its own name (this.save(name=...) renames it), else its flow's: read where stored.
        "name": lambda: context.store.get_execution(live.execution_id).display_name,
        "flow_name": lambda: state.flow_name,
        "client_name": lambda: context.options.client_name,
        "user_name": lambda: context.options.user_name,
    }
    if not isinstance(field, str) or field not in fields:
        raise InvalidCallError(f"this.get({field!r}): the fields are {', '.join(fields)}")
    return json_value("get", field, fields[field]())


@performer("pause")
def _pause(context: StepContext) -> Result:
    # Answered at once; the execution then stops, PAUSED, before its next call is performed.
    return done(None, status=Status.PAUSED.value)


@performer("save")
def _save(context: StepContext, **fields: Any) -> Result:
    unknown = sorted(set(fields) - {"output_value", "message", "name"})
    if unknown:
        raise InvalidCallError(
            f"this.save() takes output_value=, message= and name=, not {unknown}"
        )
    renamed = {}
    if "name" in fields:  # display-only: a restore does not take it back (see README)
        name = fields["name"]
        renamed["name"] = None if name is None else check_name("save", "the name", name)
    state = context.live.state
    outputs = fields.get("output_value", state.outputs)
    if not isinstance(outputs, dict):
        raise SerializationError(
            "save", f"output_value must be a dict, not {type(outputs).__name__}"
        )
    outputs = json_value("save", "output_value", outputs)
    message = fields.get("message", state.message)
    message = None if message is None else str(message)
    answer = {"output_value": outputs, "message": message}
    return done(answer, outputs=outputs, message=message, **renamed)


@performer("success")
def _success(context: StepContext, message: str | None) -> Result:
    return End(Status.ENDED_SUCCESS, None if message is None else str(message))


@performer("error")
def _error(context: StepContext, message: str) -> Result:
    return End(Status.ENDED_ERROR, str(message))


@performer("sleep")
def _sleep(context: StepContext, seconds: float) -> Result:
    return _wait_until(context, context.now + timedelta(seconds=check_seconds("sleep", seconds)))


@performer("sleep_until")
def _sleep_until(context: StepContext, timestamp: float) -> Result:
    wake_s = check_wake("sleep_until", timestamp, context.now.timestamp())
    return _wait_until(context, datetime.fromtimestamp(wake_s, UTC))


def _wait_until(context: StepContext, until: datetime) -> Result:
    live = context.live
    if live.wake_at is not None:
        until = live.wake_at  # fixed when the wait began: a re-run step does not extend it
    if until <= context.now:
        return done(None, status=Status.RUNNING.value, wake_at=None)
    return Wait(until)

"""Calls on messages: send one (system.message), wait for its response, read it."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flowrt.calls import Outcome
from flowrt.errors import InvalidCallError, MessageResponseTimeoutError, NotFoundError
from flowrt.flow_api.messages import MESSAGE_FIELDS
from flowrt.forms import check_form, message_type, subject_text
from flowrt.perform.base import Answer, Result, StepContext, Wait, done, performer
from flowrt.storage.base import MessageRecord
from flowrt.storage.messages import waits_on_message

_MESSAGES = uuid.UUID("3b0c8f0e-5d2a-4f51-9a6e-1c7d2e4b8a90")  # namespace of message ids


@performer("message", reaches_out=True)
def _message(context: StepContext, subject: str, kind: str, body: Any) -> Result:
    # Checked by system.message already; checked again, as what is stored must hold.
    subject, kind = subject_text("system.message", subject), message_type("system.message", kind)
    if isinstance(body, dict):
        body = check_form("system.message", body)
    elif body is not None and not isinstance(body, str):
        raise InvalidCallError(f"system.message(body=...): a form or a text, not {type(body)}")
    # The id is the call's: a step that runs again (a crash) finds the message it stored,
    # a restore of the call's savepoint is a new attempt and sends a new one.
    message_id = str(uuid.uuid5(_MESSAGES, context.idempotency_key))
    record = MessageRecord(message_id, context.live.execution_id, subject, kind, body, context.now)
    return done(context.store.create_message(record).id)


@performer("message.wait")
def _wait(context: StepContext, message_id: str, timeout_s: float | None) -> Result:
    record = _found(context, message_id)
    # Over, however it ends: no wake-up time or message is left behind (the execution may
    # be RUNNING here, resumed from a pause during the wait, which keeps both).
    over = {"wake_at": None, "waits_on": None}
    if record.responded_at is not None:
        return done(None, **over)
    wake_at, until = context.live.wake_at, None
    if timeout_s is not None:
        # Fixed when the wait began: a step that runs again, or a resume, does not extend it.
        until = wake_at if wake_at is not None else context.now + timedelta(seconds=timeout_s)
        if until <= context.now:
            timed_out = MessageResponseTimeoutError(record.id, timeout_s)
            return Answer(Outcome(error=timed_out), over)
    return Wait(until, waits_on=waits_on_message(record.id))


@performer("message.get")
@performer("message.load")
def _read(context: StepContext, message_id: str, fields: tuple[str, ...]) -> Result:
    record = _found(context, message_id)
    values = []
    for field in fields:
        if field not in MESSAGE_FIELDS:
            raise InvalidCallError(f"message.get({field!r}): the fields are {MESSAGE_FIELDS}")
        values.append(_field(record, field))
    return done(values)


def _found(context: StepContext, message_id: str) -> MessageRecord:
    record = context.store.get_message(message_id)
    if record is None:
        raise NotFoundError("message", message_id, "give the id of a message system.message sent")
    return record


def _field(record: MessageRecord, field: str) -> Any:
    if field == "is_submitted":
        return record.responded_at is not None
    if field in ("created_at", "responded_at"):
        when = getattr(record, field)
        return None if when is None else when.isoformat()
    return getattr(record, field)

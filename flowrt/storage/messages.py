"""Message statements of the SQL store: what executions ask people, their answers, and waking
the executions that wait for them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from flowrt.errors import MessageAnsweredError, NotFoundError
from flowrt.status import Status
from flowrt.storage import scripts
from flowrt.storage.base import ExecutionRecord, MessageRecord
from flowrt.storage.rows import is_uuid
from flowrt.storage.schema import WAITING, executions, messages

MESSAGE = "message:"  # the prefix of an execution's `waits_on` while it waits for a response
_OPEN = (Status.RUNNING.value, Status.WAITING.value, Status.PAUSED.value)
_LISTING_HINT = "`flowrt messages` lists the pending ones"


def waits_on_message(message_id: str) -> str:
    """The `waits_on` of an execution waiting for the response to `message_id`."""
    return f"{MESSAGE}{message_id}"


class MessageStatements:
    """The `Store` methods of messages on a SQLAlchemy engine; `SqlStore` inherits them."""

    engine: sa.Engine
    _insert: Any

    def create_message(self, message: MessageRecord) -> MessageRecord:
        row = {
            "id": message.id,
            "execution_id": message.execution_id,
            "subject": message.subject,
            "message_type": message.message_type,
            "body": message.body,
            "created_at": message.created_at,
        }
        statement = self._insert(messages).values(row).on_conflict_do_nothing()
        with self.engine.begin() as conn:
            conn.execute(statement)
            stored = conn.execute(_by_id(message.id)).first()
        assert stored is not None, "a message just inserted (or found) is there"
        return message_record(stored)

    def get_message(self, message_id: str) -> MessageRecord | None:
        if not is_uuid(message_id):
            return None
        with self.engine.begin() as conn:
            row = conn.execute(_by_id(_normal(message_id))).first()
        return message_record(row) if row is not None else None

    def list_messages(self, execution_id: str | None = None) -> list[MessageRecord]:
        m = messages.c
        order = (m.created_at, m.id)
        if execution_id is not None:
            if not is_uuid(execution_id):
                return []
            query = sa.select(messages).where(m.execution_id == execution_id).order_by(*order)
            with self.engine.begin() as conn:
                return [message_record(row) for row in conn.execute(query)]
        # Pending: those of executions that have not ended (by the status index, then the
        # messages of each), and those an execution waits for (a child waiting for the
        # message its parent sent before it ended).
        of_open = (
            sa.select(messages)
            .join(executions, executions.c.id == m.execution_id)
            .where(executions.c.status.in_(_OPEN), m.responded_at.is_(None))
        )
        waited = sa.select(executions.c.waits_on).where(
            WAITING, executions.c.waits_on.like(f"{MESSAGE}%")
        )
        with self.engine.begin() as conn:
            found = {row.id: message_record(row) for row in conn.execute(of_open)}
            ids = {_message_id(w) for w in conn.scalars(waited)} - {None} - set(found)
            if ids:
                more = sa.select(messages).where(m.id.in_(ids), m.responded_at.is_(None))
                found.update((row.id, message_record(row)) for row in conn.execute(more))
        return sorted(found.values(), key=lambda record: (record.created_at, record.id))

    def respond_message(
        self, message_id: str, response: dict[str, Any], now: datetime
    ) -> MessageRecord:
        if not is_uuid(message_id):
            raise NotFoundError("message", message_id, _LISTING_HINT)
        message_id, m = _normal(message_id), messages.c
        # Only the first response is stored: a second one (even at the same instant, from
        # another process) finds responded_at set and changes nothing.
        first = (
            messages.update()
            .where(m.id == message_id, m.responded_at.is_(None))
            .values(response=response, responded_at=now)
        )
        with self.engine.begin() as conn:
            stored = conn.execute(first).rowcount == 1
            row = conn.execute(_by_id(message_id)).first()
        if row is None:
            raise NotFoundError("message", message_id, _LISTING_HINT)
        record = message_record(row)
        if not stored:
            assert record.responded_at is not None
            raise MessageAnsweredError(message_id, record.responded_at.isoformat())
        return record

    def list_waiting_on(self, waits_on: str) -> list[ExecutionRecord]:
        query = sa.select(executions).where(WAITING, executions.c.waits_on == waits_on)
        with self.engine.begin() as conn:
            return scripts.records(conn, conn.execute(query))

    def wake_waiting_on(
        self, waits_on: str, now: datetime, lease_until: datetime
    ) -> list[ExecutionRecord]:
        c = executions.c
        # A wait with a timeout has its wake-up time ahead: brought forward to now.
        statement = (
            executions.update()
            .where(WAITING, c.waits_on == waits_on)
            .where(sa.or_(c.wake_at.is_(None), c.wake_at > now))
            .values(wake_at=now, lease_until=lease_until)
            .returning(*executions.c)
        )
        with self.engine.begin() as conn:
            return scripts.records(conn, conn.execute(statement))

    def wake_answered(self, now: datetime) -> int:
        c = executions.c
        # The waits with no wake-up time (the same partial-index range wake_parents reads),
        # then the primary key of each message they name.
        waiting = sa.select(c.waits_on).where(
            WAITING, c.wake_at.is_(None), c.waits_on.like(f"{MESSAGE}%")
        )
        with self.engine.begin() as conn:
            named = {w: _message_id(w) for w in conn.scalars(waiting)}
            ids = {i for i in named.values() if i is not None}
            if not ids:
                return 0
            answered = sa.select(messages.c.id).where(
                messages.c.id.in_(ids), messages.c.responded_at.is_not(None)
            )
            done = {_normal(str(i)) for i in conn.scalars(answered)}
            due = [w for w, i in named.items() if i in done]
            if not due:
                return 0
            wake = (
                executions.update()
                .where(WAITING, c.wake_at.is_(None), c.waits_on.in_(due))
                .values(wake_at=now)
            )
            return conn.execute(wake).rowcount


def message_record(row: Any) -> MessageRecord:
    """The record of a `messages` row."""
    return MessageRecord(
        id=str(row.id),
        execution_id=str(row.execution_id),
        subject=row.subject,
        message_type=row.message_type,
        body=row.body,
        created_at=row.created_at,
        response=row.response,
        responded_at=row.responded_at,
    )


def _by_id(message_id: str) -> Any:
    return sa.select(messages).where(messages.c.id == message_id)


def _message_id(waits_on: str | None) -> str | None:
    # The message id a `waits_on` names, normalised; None for anything else (an altered row).
    if not waits_on or not waits_on.startswith(MESSAGE):
        return None
    text = waits_on[len(MESSAGE) :]
    return _normal(text) if is_uuid(text) else None


def _normal(message_id: str) -> str:
    # Ids as the database gives them back: lower case, with dashes.
    return str(uuid.UUID(message_id))

"""The journal: signed savepoint rows to replay entries, and a step's outcome to a signed row."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flowrt.blobs import Signer
from flowrt.calls import Outcome
from flowrt.clock import utc_now
from flowrt.errors import AnswerTooLargeError, SerializationError
from flowrt.ids import new_id
from flowrt.live import LiveExecution, Parked, ReplayEntry
from flowrt.seals import check_execution, check_timeline, sign_savepoint
from flowrt.storage.base import ExecutionRecord, SavepointRecord, Store


class Journal:
    """Reads an execution's timeline for replay and writes the rows its steps add."""

    def __init__(self, store: Store, signer: Signer, max_answer_bytes: int) -> None:
        self.store, self.signer, self.max_answer_bytes = store, signer, max_answer_bytes

    def entries(self, record: ExecutionRecord) -> tuple[list[ReplayEntry], SavepointRecord | None]:
        """The replay entries of the execution's timeline, and its head savepoint.

        Raises `TamperedSavepointError` before anything is unpickled (or the source compiled)
        unless the execution's source and inputs and every row of its timeline carry their
        own signatures, made with a key of FLOWRT_SECRET.
        """
        check_execution(self.signer, record)
        if record.head_id is None:
            return [], None
        timeline = self.store.get_timeline(record.head_id, variables=False)
        check_timeline(self.signer, record, timeline)
        entries = []
        for row, after in zip(timeline, [*timeline[1:], None], strict=True):
            outcome = None
            if after is not None:
                what = f"savepoint #{after.seq} ({after.id}) of execution {record.id}"
                outcome = _outcome(self.signer.loads(after.answer or b"", what))
            where = f"reads of savepoint #{row.seq} ({row.id}) of execution {record.id}"
            reads = self.signer.loads(row.reads, where) if row.reads else []
            entries.append(ReplayEntry(row.seq, row.call, row.line, row.digest, outcome, reads))
        return entries, timeline[-1]

    def sign(self, live: LiveExecution, outcome: Outcome) -> tuple[bytes, Outcome]:
        """The signed blob of the pending call's outcome, and the outcome the flow gets.

        An answer that cannot be stored, or is too large, becomes an error at the call.
        """
        assert live.pending is not None
        what = f"{live.pending.describe()} at line {live.pending.line}"
        try:
            blob = self.signer.dumps(_payload(outcome))
        except Exception as error:
            outcome = Outcome(
                error=SerializationError(what, f"its answer cannot be stored: {error}")
            )
            return self.signer.dumps(_payload(outcome)), outcome
        if len(blob) > self.max_answer_bytes:
            outcome = Outcome(error=AnswerTooLargeError(what, len(blob), self.max_answer_bytes))
            blob = self.signer.dumps(_payload(outcome))
        return blob, outcome

    def savepoint(
        self, live: LiveExecution, event: Parked, answer: bytes | None
    ) -> SavepointRecord:
        """The row of the call the flow parked at, holding the answer of the call before."""
        call, head, reads = event.call, live.head, live.reads.take_new()
        record = SavepointRecord(
            id=new_id(),
            execution_id=live.execution_id,
            seq=head.seq + 1 if head else 1,
            parent_id=head.id if head else None,
            call=call.name,
            line=call.line,
            name=call.label,
            created_at=utc_now(),
            digest=call.digest,
            answer=answer,
            variables=call.variables,
            reads=self.signer.dumps(reads) if reads else None,
            script=live.script.hash,
        )
        return replace(record, signature=sign_savepoint(self.signer, record))


def _payload(outcome: Outcome) -> tuple[Any, BaseException | None] | None:
    # What is stored of an outcome: None for the common "returned None", else (value, error).
    if outcome.value is None and outcome.error is None:
        return None
    return (outcome.value, outcome.error)


def _outcome(payload: tuple[Any, BaseException | None] | None) -> Outcome:
    return Outcome() if payload is None else Outcome(*payload)

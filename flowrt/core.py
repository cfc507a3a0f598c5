"""What every verb of a runtime shares: its store, options, dispatcher, caches and the start of an
execution. `Runtime` (runtime.py) puts the verbs together."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flowrt.blobs import Signer
from flowrt.cache import LiveCache
from flowrt.clock import utc_now
from flowrt.connectors import Connectors
from flowrt.dispatch import Dispatcher, StepTicket
from flowrt.errors import SerializationError
from flowrt.ids import new_id
from flowrt.isolation import Isolation
from flowrt.journal import Journal
from flowrt.live import LiveExecution, StopReason
from flowrt.options import Options
from flowrt.script import FlowScript
from flowrt.seals import sign_execution
from flowrt.status import Status
from flowrt.storage.base import ExecutionRecord, SavepointRecord, Store
from flowrt.values import check_name

log = logging.getLogger("flowrt")


class RuntimeCore:
    """The state and helpers of a runtime that its verbs (stepping, control, children) share."""

    def __init__(
        self, store: Store, options: Options, dispatcher: Dispatcher, worker: str | None = None
    ) -> None:
        self.store, self.options, self.dispatcher, self.worker = store, options, dispatcher, worker
        signer = Signer((options.secret, *options.old_secrets))
        self.journal = Journal(store, signer, options.max_answer_bytes)
        self.live = LiveCache(options.live_max)
        self.connectors = Connectors(store)
        self._scripts: dict[tuple[str, str], FlowScript] = {}
        # Executions whose next step this worker sent to its own queue and has not begun.
        self._queued_here: set[str] = set()
        # When a step from this worker's own queue last began: that queue still delivers.
        self.own_queue_stepped_at = 0.0
        self.stats = {"steps": 0, "loads": 0, "replayed_calls": 0, "claims_refused": 0}
        self.isolation = Isolation()
        # Called with a flow whose thread could not be stopped: the edge replaces the worker
        # process (a Celery worker stops for its supervisor to restart it).
        self.on_stuck: Callable[[LiveExecution], None] = _log_stuck

    def stop_running(self, reason: StopReason) -> int:
        """Stop every flow running its own code in this process; returns how many."""
        running = [live for live in self.live.stepping() if live.running]
        for live in running:
            live.stop(reason)
        return len(running)

    @property
    def holder(self) -> str:
        """The name this runtime's worker writes into the executions it holds."""
        return self.worker or "local"

    def close(self) -> None:
        """Unload live executions and close connectors."""
        self.live.clear()
        self.connectors.close()

    def lease_until(self, now: datetime | None = None) -> datetime:
        """When a lease taken now runs out."""
        return (now or utc_now()) + timedelta(seconds=self.options.lease_s)

    def start(
        self,
        flow_name: str,
        source: str,
        inputs: dict[str, Any] | None = None,
        *,
        parent_id: str | None = None,
        execution_id: str | None = None,
        name: str | None = None,
        run: bool = True,
    ) -> ExecutionRecord:
        """Check the script, store a new execution and enqueue its first step.

        `name` is the execution's own name (None: it goes by `flow_name`). With `run=False`
        it is stored PAUSED, with no lease and no step: nothing runs it until it is started
        (`run_child`, or `resume`). With an `execution_id` that exists already, that
        execution is returned and its first step sent once more, which its fence makes
        harmless (see `start_child`).
        """
        self._script(flow_name, source)
        call = "flow" if parent_id else "start"
        if name is not None:
            check_name(call, "the execution name", name)
        if not isinstance(inputs or {}, dict):
            raise SerializationError(call, f"inputs must be a dict, not {type(inputs).__name__}")
        try:
            inputs = json.loads(json.dumps(inputs or {}))
        except (TypeError, ValueError) as error:
            raise SerializationError(call, f"inputs must be JSON-serialisable: {error}") from None
        execution_id = execution_id or new_id()
        signature = sign_execution(
            self.journal.signer, execution_id, flow_name, source, inputs, parent_id
        )
        record = self.store.create_execution(
            flow_name,
            source,
            inputs,
            execution_id=execution_id,
            parent_id=parent_id,
            lease_until=self.lease_until() if run else None,
            signature=signature,
            name=name,
            status=Status.RUNNING if run else Status.PAUSED,
        )
        if run:
            self.dispatcher.enqueue_step(StepTicket(record.id, 0, flow_name, 0, "start"))
        return record

    def send(self, record: ExecutionRecord, call: str, worker: str | None = None) -> None:
        """Enqueue the step of `record` as stored, on `worker`'s own queue or the shared one."""
        ticket = StepTicket(record.id, record.version, record.flow_name, None, call, record.head_id)
        self.dispatcher.enqueue_step(ticket, worker=worker)

    def _claim(
        self, execution_id: str, version: int, head_id: str | None = None
    ) -> ExecutionRecord | None:
        """Become the execution's holder, unless the version moved or another worker holds it."""
        now = utc_now()
        lease = self.lease_until(now)
        record = self.store.claim(execution_id, version, self.holder, now, lease, head_id)
        if record is None:
            self.stats["claims_refused"] += 1
        return record

    def _script(self, flow_name: str, source: str) -> FlowScript:
        key = (flow_name, hashlib.sha256(source.encode()).hexdigest())
        script = self._scripts.get(key)
        if script is None:
            script = self._scripts[key] = FlowScript.compile(flow_name, source)
        return script

    def _wake(self, execution_id: str) -> None:
        """A child ended: wake its parent if it waits for children, where it is loaded."""
        record = self.store.wake(execution_id, utc_now(), self.lease_until())
        if record is not None:
            self.send(record, "wake", record.worker)

    def _enqueue_restored(
        self, execution_id: str, version: int, flow_name: str, target: SavepointRecord
    ) -> None:
        ticket = StepTicket(execution_id, version, flow_name, target.seq, "restore", target.id)
        self.dispatcher.enqueue_step(ticket)


def _log_stuck(live: LiveExecution) -> None:
    log.error(
        "the flow of execution %s could not be stopped and keeps a thread of this process "
        "busy (blocked outside Python code); restart the process to free it",
        live.execution_id,
    )

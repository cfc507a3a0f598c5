"""The Python entry points: start flows, look at executions and their savepoints, restore them."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import config
from flowrt.clock import utc_now
from flowrt.connectors import check_config
from flowrt.connectors.base import KIND as CONNECTOR
from flowrt.dryrun import CheckReport
from flowrt.embedded import EmbeddedWorker
from flowrt.errors import (
    ConfigurationError,
    InvalidStateError,
    MessageAnsweredError,
    NotFoundError,
)
from flowrt.flow_versions import FlowVersion, flow_versions, version_source
from flowrt.forms import check_response
from flowrt.options import Options
from flowrt.runtime import Runtime
from flowrt.script import read_source, register_flow, resolve_flow
from flowrt.status import Status
from flowrt.storage import (
    ExecutionRecord,
    LogRecord,
    MessageRecord,
    NamedRecord,
    SavepointRecord,
    open_store,
)
from flowrt.storage.backlog import Backlog, measure
from flowrt.storage.browse import (
    ExecutionPage,
    browse_executions,
    current_branch,
    savepoint_window,
    script_sources,
)
from flowrt.storage.messages import waits_on_message
from flowrt.values import check_json, check_name

SETTING = "setting"


class Client:
    """flowrt as seen from outside the workers, for one set of settings."""

    def __init__(self, settings: config.Settings) -> None:
        from tasks.steps import CeleryDispatcher, create_app  # the edge that wires Celery in

        self.settings = settings
        self.app = create_app(settings)
        self.store = open_store(settings.database_url)
        self.runtime = Runtime(
            self.store, Options(**settings.runtime_options()), CeleryDispatcher(self.app)
        )
        self._worker: EmbeddedWorker | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        """Stop the in-process worker, if any, and release connections."""
        with self._lock:
            if self._worker is not None:
                self._worker.stop()
                self._worker = None
        self.runtime.close()
        self.store.close()

    def ensure_worker(self) -> None:
        """Run steps in this process too (always so on the embedded memory:// broker)."""
        with self._lock:
            if self._worker is None:
                self._worker = EmbeddedWorker(self.app, self.settings.worker_concurrency)

    # --- executions --------------------------------------------------------------------------

    def start(
        self, flow: str, inputs: dict[str, Any] | None = None, name: str | None = None
    ) -> Handle:
        """Start the flow `flow` (a file path or a registered name) and return its handle.

        `name` names the execution (shown by `flowrt executions`; default: the flow's name).
        """
        if name is not None:
            check_name("start", "the execution name", name)
        flow_name, source = self.resolve_flow(flow)
        if inputs is not None:
            check_json("start", "inputs", inputs)
        if self.settings.embedded_broker:
            self.ensure_worker()
        record = self.runtime.start(flow_name, source, inputs, name=name)
        return Handle(self, record.id)

    def get(self, execution_id: str) -> Handle:
        """The handle of an existing execution; raises `ExecutionNotFoundError`."""
        return Handle(self, self.store.get_execution(execution_id).id)

    def resolve_flow(self, flow: str) -> tuple[str, str]:
        """`(name, source)` of a flow file or registered flow."""
        return resolve_flow(self.store, flow, self.runtime.journal.signer)

    def script_source(self, script: str | Path) -> str:
        """The source `script` names: a flow file, a registered flow, or source text itself."""
        if isinstance(script, str) and "\n" in script:
            return script
        return self.resolve_flow(str(script))[1]

    def check(
        self, execution_id: str, script: str | Path, to: str | None = None, by: str = "id"
    ) -> CheckReport:
        """Dry-run `script` against the execution's journal up to savepoint `to` (its head)."""
        source = self.script_source(script)
        return self.runtime.check(self.get(execution_id).id, source, to, by)

    def list_executions(
        self, limit: int = 50, status: Status | None = None
    ) -> list[ExecutionRecord]:
        """Newest executions first."""
        return self.store.list_executions(limit, status)

    def browse(
        self,
        status: Status | None = None,
        flow: str | None = None,
        search: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> ExecutionPage:
        """A page of executions, newest first, with counts per status (the web view's list)."""
        return browse_executions(self.store.engine, status, flow, search, limit, offset)

    def script_sources(self, short_hashes: set[str]) -> dict[str, str]:
        """The stored sources of the scripts savepoints name by short hash (their `script`)."""
        return script_sources(self.store.engine, short_hashes)

    def backlog(self) -> Backlog:
        """Runnable and waiting executions, and how many each worker holds (`flowrt stats`)."""
        return measure(self.store.engine, utc_now())

    # --- messages ----------------------------------------------------------------------------

    def list_messages(self, execution_id: str | None = None) -> list[MessageRecord]:
        """The messages of `execution_id` (all, oldest first), or else all pending ones."""
        return self.store.list_messages(execution_id)

    def respond(self, message_id: str, response: dict[str, Any]) -> MessageRecord:
        """Respond to a message, once, and wake the executions waiting for the response.

        The response must fit the message's form (`SchemaValidationError` names the field
        and changes nothing); a second response raises `MessageAnsweredError`; a message of
        an execution that has ended, which no execution waits for, `InvalidStateError`.
        """
        message = self.store.get_message(message_id)
        if message is None:
            raise NotFoundError("message", message_id, "`flowrt messages` lists the pending ones")
        if message.responded_at is not None:
            raise MessageAnsweredError(message.id, message.responded_at.isoformat())
        response = check_response(message, response)
        waits_on = waits_on_message(message.id)
        found = self.store.get_executions([message.execution_id])
        status = found[0].status if found else Status.UNKNOWN
        if (status.ended or not found) and not self.store.list_waiting_on(waits_on):
            raise InvalidStateError(
                message.execution_id,
                status.value,
                f"respond to message {message.id} of",
                "RUNNING, WAITING or PAUSED",
            )
        stored = self.store.respond_message(message.id, response, utc_now())
        # Woken where each is loaded; if this wake-up is lost (a crash, or an embedded broker
        # no worker of this process reads), the reaper sends it once its lease has run out.
        now = utc_now()
        for record in self.store.wake_waiting_on(waits_on, now, self.runtime.lease_until(now)):
            self.runtime.send(record, "wake", record.worker)
        return stored

    # --- named objects -----------------------------------------------------------------------

    def set_connector(self, name: str, type: str, **config: Any) -> None:
        """Create or replace connector `name`: `type='sql', url=...` or `'rest', base_url=...`."""
        check_name("connector set", "the connector name", name)
        config = check_json("connector set", "config", config)
        self.store.put_named(CONNECTOR, name, check_config(name, type, config))

    def register_flow(self, name: str, path: str | Path) -> int:
        """Store the flow file at `path` under `name`, so `start(name)` and children find it;
        the number of its version (new unless the flow had this source before)."""
        signer = self.runtime.journal.signer
        return register_flow(self.store, signer, name, read_source(path, name))

    def flow_versions(self, name: str) -> list[FlowVersion]:
        """The versions registered flow `name` had, oldest first (none if there is no such)."""
        return flow_versions(self.store, self.runtime.journal.signer, name)

    def flow_version(self, ref: str) -> str:
        """The source of `ref`, "NAME@N" (version N of registered flow NAME), to pass as a
        `script`; raises `FlowNotFoundError` if there is no such version."""
        source = version_source(self.store, self.runtime.journal.signer, ref)
        return source if "\n" in source else source + "\n"  # read as text, not as a name

    def set_setting(self, name: str, value: Any) -> None:
        """Create or replace the setting `name` (any JSON value)."""
        check_name("setting set", "the setting name", name)
        self.store.put_named(SETTING, name, check_json("setting set", "the value", value))

    def get_setting(self, name: str) -> Any:
        """The value of the setting `name`, or None if there is none."""
        record = self.store.get_named(SETTING, name)
        return None if record is None else record.value

    def list_named(self, kind: str) -> list[NamedRecord]:
        """Connectors, flows, settings or files, by name."""
        return self.store.list_named(kind)

    def delete_named(self, kind: str, name: str) -> bool:
        """Delete a connector, flow, setting or file."""
        return self.store.delete_named(kind, name)


@dataclass(frozen=True)
class Handle:
    """An execution, seen from outside; every property reads its current state."""

    client: Client
    id: str

    def record(self) -> ExecutionRecord:
        """The execution's row as stored now."""
        return self.client.store.get_execution(self.id)

    @property
    def status(self) -> Status:
        """Its status now."""
        return self.record().status

    @property
    def outputs(self) -> dict[str, Any]:
        """Its output_value now."""
        return self.record().outputs

    def wait(self, timeout_s: float = 60.0) -> Handle:
        """Block until the execution has ended; raises `TimeoutError` after `timeout_s`."""
        deadline, pause_s = time.monotonic() + timeout_s, 0.005
        while not self.status.ended:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"execution {self.id} is still {self.status.value} after {timeout_s} s; "
                    "is a worker running (`celery -A tasks worker`)?"
                )
            time.sleep(pause_s)
            pause_s = min(pause_s * 2, 0.1)
        return self

    def savepoints(self) -> list[SavepointRecord]:
        """All its savepoints, every branch, in the order they were made."""
        return self.client.store.list_savepoints(self.id)

    def savepoint_window(
        self, limit: int = 200, offset: int = 0
    ) -> tuple[list[SavepointRecord], int]:
        """Savepoints `offset`.. in the order they were made (at most `limit`), and how many."""
        return savepoint_window(self.client.store.engine, self.id, limit, offset)

    def current_branch(self) -> set[str]:
        """The ids of the savepoints from its first to its head: the branch it goes on from."""
        return current_branch(self.client.store.engine, self.id, self.record().head_id)

    def restore(self, ref: str, by: str = "id", script: str | Path | None = None) -> Handle:
        """Restore it to savepoint `ref` (by `'id'` or `'name'`) and let it run from there.

        With `script` (a flow file, registered flow or source text), the script is checked
        against the journal first and the execution goes on under it; an incompatible one is
        refused with `IncompatibleScriptError`, changing nothing.
        """
        self._worker_for_embedded()
        if script is None:
            self.client.runtime.restore(self.id, ref, by)
        else:
            source = self.client.script_source(script)
            self.client.runtime.restore_under(self.id, ref, by, source)
        return self

    def upgrade(self, script: str | Path) -> Handle:
        """Move it (running, waiting or paused) onto `script` at its head, once checked."""
        self._worker_for_embedded()
        self.client.runtime.upgrade(self.id, self.client.script_source(script))
        return self

    def pause(self) -> Handle:
        """Pause it: a step under way is not stored, and nothing runs until `resume()`."""
        self.client.runtime.pause(self.id)
        return self

    def resume(self) -> Handle:
        """Let a paused execution go on from its newest savepoint."""
        self._worker_for_embedded()
        self.client.runtime.resume(self.id)
        return self

    def cancel(self) -> Handle:
        """End it ENDED_CANCELLED, and every child execution of it that has not ended."""
        self.client.runtime.cancel(self.id)
        return self

    def children(self) -> list[Handle]:
        """The child executions it started, oldest first."""
        return [Handle(self.client, r.id) for r in self.client.store.list_children(self.id)]

    def _worker_for_embedded(self) -> None:
        if self.client.settings.embedded_broker:
            self.client.ensure_worker()

    def archive(self) -> Handle:
        """Delete its savepoints; status, outputs and logs stay."""
        self.client.runtime.archive(self.id)
        return self

    def logs(self) -> list[LogRecord]:
        """Its log lines, oldest first."""
        return self.client.store.list_logs(self.id)

    def messages(self) -> list[MessageRecord]:
        """The messages it sent (`system.message`), oldest first, with their responses."""
        return self.client.list_messages(self.id)

    def respond(self, message_id: str, response: dict[str, Any]) -> MessageRecord:
        """Respond to its message `message_id`; see `Client.respond`."""
        if not any(message.id == str(message_id).lower() for message in self.messages()):
            raise NotFoundError(
                "message",
                message_id,
                f"execution {self.id} sent no such message; `flowrt messages --execution "
                f"{self.id}` lists its messages",
            )
        return self.client.respond(message_id, response)


_clients: dict[config.Settings, Client] = {}
_clients_lock = threading.Lock()


def default_client() -> Client:
    """The client for the current FLOWRT_* environment."""
    try:
        settings = config.load()
    except config.SettingsError as error:
        raise ConfigurationError(str(error)) from None
    with _clients_lock:
        if settings not in _clients:
            _clients[settings] = Client(settings)
        return _clients[settings]


def start(flow: str, inputs: dict[str, Any] | None = None, *, name: str | None = None) -> Handle:
    """Start `flow` (a .py path or a registered flow name) with `inputs`, as the execution
    `name` (default: the flow's name); returns its handle."""
    return default_client().start(flow, inputs, name)


def get(execution_id: str) -> Handle:
    """The handle of the execution `execution_id`."""
    return default_client().get(execution_id)


def check(
    execution_id: str, source: str | Path, to: str | None = None, by: str = "id"
) -> CheckReport:
    """Dry-run `source` (text, a flow file or registered flow) against the execution's journal.

    Performs nothing; returns a `CheckReport` (`.compatible`, `.describe()`).
    """
    return default_client().check(execution_id, source, to, by)


def shutdown() -> None:
    """Stop in-process workers and close every client (tests and embedding programs)."""
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()


__all__ = ["Client", "Handle", "check", "default_client", "get", "shutdown", "start"]

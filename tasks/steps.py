"""Build a Celery app wired to a flowrt runtime: the step task and the dispatcher that sends it."""

from __future__ import annotations

import logging
import os
import threading
import traceback
from collections.abc import Callable
from datetime import datetime
from typing import Any

from celery import Celery, Task, signals
from celery.utils.nodenames import worker_direct
from kombu.exceptions import ChannelError
from kombu.exceptions import OperationalError as BrokerError

from config import Settings, celery_config
from flowrt import leases
from flowrt.dispatch import StepTicket
from flowrt.errors import DispatchError
from flowrt.options import Options
from flowrt.runtime import Runtime
from flowrt.storage import open_store
from flowrt.storage.faults import Backoff, describe, is_permanent, is_transient
from tasks import pool_choice, shutdown
from tasks.reconnect import keep_transport_client_on_close
from tasks.transport import reuse_redis_clients

log = logging.getLogger("flowrt.tasks")

STEP = "flowrt.step"
REAP = "flowrt.reap"


class CeleryDispatcher:
    """Sends step messages: JSON, ids only, named and described for Flower."""

    def __init__(self, app: Celery, hostname: str | None = None) -> None:
        self.app, self.hostname = app, hostname

    def enqueue_step(
        self, ticket: StepTicket, *, worker: str | None = None, eta: datetime | None = None
    ) -> None:
        options: dict[str, Any] = {
            "shadow": f"{STEP} {ticket.label}",
            "argsrepr": f"(execution={ticket.execution_id!r}, version={ticket.version})",
            "kwargsrepr": (
                f"{{'flow': {ticket.flow_name!r}, 'seq': {ticket.seq}, 'call': {ticket.call!r}}}"
            ),
        }
        if worker:
            options["queue"] = worker_direct(worker).name
        if eta is not None:
            options["eta"] = eta
        args = (ticket.execution_id, ticket.version, ticket.head_id)
        try:
            self.app.tasks[STEP].apply_async(args, **options)
        except BrokerError as error:  # the core knows no kombu: it gets a flowrt error
            raise DispatchError(ticket.execution_id, f"{type(error).__name__}: {error}") from None


def create_app(settings: Settings) -> Celery:
    """A Celery app for `settings` with flowrt's step task registered."""
    keep_transport_client_on_close()
    reuse_redis_clients()
    app = Celery("flowrt", set_as_current=False)
    app.conf.update(celery_config(settings))
    app.flowrt_settings = settings  # type: ignore[attr-defined]
    app.flowrt_runtimes = {}  # type: ignore[attr-defined]
    app.flowrt_lock = threading.Lock()  # type: ignore[attr-defined]

    def on_worker_init(sender: Any, **_: Any) -> None:
        # The task request's hostname is the machine's under the thread pool, not the
        # worker's node name, which names its direct queue.
        if sender.app is not app:
            return
        pool_choice.refuse_other_pools(sender)
        app.flowrt_hostname = sender.hostname  # type: ignore[attr-defined]
        if not settings.embedded_broker and not os.environ.get("PYTHONHASHSEED"):
            log.warning(
                "PYTHONHASHSEED is not set: a flow that iterates over a set may replay "
                "differently on another worker; set it to the same value on every worker"
            )
        runtime = runtime_of(app, sender.hostname)
        if not settings.embedded_broker:  # a process of its own, which its supervisor restarts
            runtime.on_stuck = shutdown.replace_worker
        tickers = [
            Ticker(
                "flowrt-heartbeat", settings.lease_seconds / 3, lambda: leases.heartbeat(runtime)
            )
        ]
        if settings.embedded_broker:  # no beat can reach an in-process broker: reap here
            tickers.append(
                Ticker("flowrt-reaper", settings.reap_interval_seconds, lambda: reap(app))
            )
        app.flowrt_tickers = tickers  # type: ignore[attr-defined]

    def on_worker_shutdown(sender: Any, **_: Any) -> None:
        # A worker that stops hands its executions to the reaper at once, rather than after
        # their leases run out.
        if sender.app is not app:
            return
        for ticker in getattr(app, "flowrt_tickers", []):
            ticker.stop()
        with app.flowrt_lock:  # type: ignore[attr-defined]
            runtime = app.flowrt_runtimes.pop(sender.hostname, None)  # type: ignore[attr-defined]
        if runtime is not None:
            leases.release(runtime)
            runtime.close()
            runtime.store.close()

    signals.worker_init.connect(on_worker_init, weak=False)
    shutdown.install(app, settings.shutdown_grace_seconds)
    signals.worker_shutdown.connect(on_worker_shutdown, weak=False)

    @app.task(name=STEP, bind=True, acks_late=True, max_retries=None, shared=False)
    def step(self: Task, execution_id: str, version: int, head_id: str | None = None) -> None:
        """Advance one execution by one Flow-API call."""
        runtime = runtime_of(app, getattr(app, "flowrt_hostname", None))
        try:
            runtime.step(execution_id, int(version), head_id)
        except (DispatchError, BrokerError) as error:
            # What the step wrote is stored; only its next message is missing. The lease of
            # the execution runs out and the reaper sends it again once the broker is back.
            log.warning("step %s v%s: %s", execution_id, version, error)
        except Exception as error:
            on_step_error(self, runtime, execution_id, int(version), error)

    @app.task(name=REAP, shared=False, acks_late=False)
    def reap_task() -> None:
        """Send on the executions nobody answers for (sent by beat every second)."""
        reap(app)

    @app.task(name="flowrt.wake_worker", shared=False)
    def wake_worker() -> None:
        """Do nothing: a message that wakes an embedded worker so it sees it must stop."""

    return app


def on_step_error(
    task: Task, runtime: Runtime, execution_id: str, version: int, error: Exception
) -> None:
    """Retry a step after a transient database fault, a bounded number of times; end the
    execution after a permanent one (never retried) or a fault of flowrt itself."""
    settings: Settings = task.app.flowrt_settings
    if is_transient(error):
        retries = task.request.retries
        if retries >= settings.step_retries:
            log.error(
                "step %s v%s dropped after %d retries (%s); the reaper sends it again once "
                "its lease runs out",
                *(execution_id, version, retries, describe(error)),
            )
            return
        backoff = Backoff(0, settings.step_retry_seconds, settings.step_retry_max_seconds)
        delay_s = backoff.delay_s(retries)
        log.warning(
            "step %s v%s failed (%s); retrying in %.1f s (retry %d of %d)",
            *(execution_id, version, describe(error), delay_s, retries + 1),
            settings.step_retries,
        )
        try:
            # No `exc`: Celery would log it, and SQLAlchemy's text of it shows the statement.
            raise task.retry(countdown=delay_s)
        except BrokerError as lost:
            log.warning("step %s v%s not retried: %s", execution_id, version, lost)
            return
    try:
        if is_permanent(error):
            runtime.fail_write(execution_id, version, error)
        else:
            # A fault of flowrt itself: end the execution where people look, with the trace,
            # rather than leave it RUNNING with no step; it can be restored once fixed.
            log.exception("step %s v%s failed", execution_id, version)
            runtime.fail(execution_id, version, traceback.format_exc())
    except Exception as failed:  # the lease runs out and the reaper sends the step again
        log.error("step %s v%s cannot be ended (%s)", execution_id, version, describe(failed))


def reap(app: Celery) -> None:
    """One pass of the reaper, told how deep the shared queue is."""
    leases.reap(runtime_of(app, getattr(app, "flowrt_hostname", None)), shared_backlog(app))


def shared_backlog(app: Celery) -> int:
    """Messages waiting in the shared queue (0 when the broker cannot say)."""
    queue = app.flowrt_settings.queue  # type: ignore[attr-defined]
    try:
        with app.connection_or_acquire() as connection:
            declared = connection.default_channel.queue_declare(queue=queue, passive=True)
            return int(declared.message_count)
    except ChannelError:  # Redis keeps no empty list: "no queue" means an empty one
        return 0
    except Exception as error:  # the reaper still runs, assuming nothing is queued
        log.warning("cannot read the length of queue %s: %s", queue, error)
        return 0


class Ticker:
    """Calls `action` every `interval_s` seconds on a daemon thread until stopped."""

    def __init__(self, name: str, interval_s: float, action: Callable[[], Any]) -> None:
        self._stop = threading.Event()
        self._interval_s, self._action = interval_s, action
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking and wait for a tick under way to finish."""
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._action()
            except Exception:  # the database may be away for a while: try next time
                log.exception("%s failed", self._thread.name)


def runtime_of(app: Celery, hostname: str | None) -> Runtime:
    """The runtime this process uses as worker `hostname`, built on first use."""
    with app.flowrt_lock:  # type: ignore[attr-defined]
        runtime = app.flowrt_runtimes.get(hostname)  # type: ignore[attr-defined]
        if runtime is None:
            settings: Settings = app.flowrt_settings  # type: ignore[attr-defined]
            store = open_store(settings.database_url, pre_ping=False)  # the step retries
            runtime = Runtime(
                store,
                Options(**settings.runtime_options()),
                CeleryDispatcher(app, hostname),
                worker=hostname,
            )
            app.flowrt_runtimes[hostname] = runtime  # type: ignore[attr-defined]
        return runtime

"""Build a Celery app wired to a flowrt runtime: the step task and the dispatcher that sends it."""

from __future__ import annotations

import logging
import os
import threading
import traceback
from datetime import datetime
from typing import Any

from celery import Celery, Task, signals
from celery.utils.nodenames import worker_direct
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import DBAPIError

from config import Settings, celery_config
from flowrt.dispatch import StepTicket
from flowrt.options import Options
from flowrt.runtime import Runtime
from flowrt.storage import open_store

log = logging.getLogger("flowrt.tasks")

STEP = "flowrt.step"
RETRY_DELAY_S = 1.0


class CeleryDispatcher:
    """Sends step messages: JSON, ids only, named and described for Flower."""

    def __init__(self, app: Celery, hostname: str | None = None) -> None:
        self.app, self.hostname = app, hostname

    def enqueue_step(
        self, ticket: StepTicket, *, sticky: bool = False, eta: datetime | None = None
    ) -> None:
        options: dict[str, Any] = {
            "shadow": f"{STEP} {ticket.flow_name}#{ticket.seq} {ticket.call}",
            "argsrepr": f"(execution={ticket.execution_id!r}, version={ticket.version})",
            "kwargsrepr": (
                f"{{'flow': {ticket.flow_name!r}, 'seq': {ticket.seq}, 'call': {ticket.call!r}}}"
            ),
        }
        if sticky and self.hostname:
            options["queue"] = worker_direct(self.hostname).name
        if eta is not None:
            options["eta"] = eta
        args = (ticket.execution_id, ticket.version, ticket.head_id)
        self.app.tasks[STEP].apply_async(args, **options)


def create_app(settings: Settings) -> Celery:
    """A Celery app for `settings` with flowrt's step task registered."""
    app = Celery("flowrt", set_as_current=False)
    app.conf.update(celery_config(settings))
    app.flowrt_settings = settings  # type: ignore[attr-defined]
    app.flowrt_runtimes = {}  # type: ignore[attr-defined]
    app.flowrt_lock = threading.Lock()  # type: ignore[attr-defined]

    def on_worker_init(sender: Any, **_: Any) -> None:
        # The task request's hostname is the machine's under the thread pool, not the
        # worker's node name, which names its direct queue.
        if sender.app is app:
            app.flowrt_hostname = sender.hostname  # type: ignore[attr-defined]
            if not settings.embedded_broker and not os.environ.get("PYTHONHASHSEED"):
                log.warning(
                    "PYTHONHASHSEED is not set: a flow that iterates over a set may replay "
                    "differently on another worker; set it to the same value on every worker"
                )

    signals.worker_init.connect(on_worker_init, weak=False)

    @app.task(name=STEP, bind=True, acks_late=True, max_retries=None, shared=False)
    def step(self: Task, execution_id: str, version: int, head_id: str | None = None) -> None:
        """Advance one execution by one Flow-API call."""
        runtime = runtime_of(app, getattr(app, "flowrt_hostname", None))
        try:
            runtime.step(execution_id, int(version), head_id)
        except (DBAPIError, BrokerError) as error:
            # The database or broker is away: try the same step again rather than lose it.
            log.warning("step %s v%s failed (%s); retrying", execution_id, version, error)
            raise self.retry(countdown=RETRY_DELAY_S, exc=error) from None
        except Exception:
            # A fault of flowrt itself: end the execution where people look, with the trace,
            # rather than leave it RUNNING with no step; it can be restored once fixed.
            log.exception("step %s v%s failed", execution_id, version)
            runtime.fail(execution_id, int(version), traceback.format_exc())

    @app.task(name="flowrt.wake_worker", shared=False)
    def wake_worker() -> None:
        """Do nothing: a message that wakes an embedded worker so it sees it must stop."""

    return app


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

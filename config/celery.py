"""The Celery configuration flowrt's workers and clients share."""

from __future__ import annotations

from typing import Any

from kombu import Queue

from config.settings import Settings


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings for `settings`: JSON ids-only messages, late acks, one message at a time."""
    transport_options: dict[str, Any] = {"visibility_timeout": settings.visibility_timeout_s}
    if settings.embedded_broker:
        # The in-memory transport polls; the default 1 s poll would add a second per step.
        transport_options = {"polling_interval": 0.005}
    return {
        "broker_url": settings.broker_url,
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_default_queue": settings.queue,
        "task_queues": [
            Queue(settings.queue, routing_key=settings.queue),
            Queue(settings.reap_queue, routing_key=settings.reap_queue),
        ],
        # Beat sends the reaper every REAP_INTERVAL_SECONDS; a pass not begun within a few
        # intervals is dropped, so reaper messages never pile up while no worker runs.
        "beat_schedule": {
            "flowrt-reap": {
                "task": "flowrt.reap",
                "schedule": settings.reap_interval_seconds,
                "options": {
                    "queue": settings.reap_queue,
                    "expires": 5 * settings.reap_interval_seconds,
                },
            }
        },
        "worker_prefetch_multiplier": 1,
        # Steps of a live execution go back to the worker holding it, via its direct queue.
        "worker_direct": True,
        # Flow code runs in threads of the worker process that keeps it live between steps;
        # a prefork pool would scatter consecutive steps over child processes. flowrt's pool
        # is a thread pool that can grow and shrink (--autoscale); others are refused at start.
        "worker_pool": "tasks.pool:StepPool",
        "worker_autoscaler": "tasks.autoscale:Autoscaler",
        "worker_concurrency": settings.worker_concurrency,
        "worker_hijack_root_logger": False,
        # Task events cost a publish each; Flower switches them on at the workers while it
        # runs (its --enable-events default), so they are off otherwise.
        "task_send_sent_event": False,
        "worker_send_task_events": False,
    }

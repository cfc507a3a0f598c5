"""The Celery app (`celery -A tasks worker`) and its thin tasks: ids in, one flowrt call each."""

from tasks.default import app
from tasks.steps import CeleryDispatcher, create_app, runtime_of

__all__ = ["CeleryDispatcher", "app", "create_app", "runtime_of"]

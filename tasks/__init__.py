"""The Celery app (`celery -A tasks worker`) and its thin tasks: ids in, one flowrt call each."""

import config
from tasks.steps import CeleryDispatcher, create_app, runtime_of

app = create_app(config.load())

__all__ = ["CeleryDispatcher", "app", "create_app", "runtime_of"]

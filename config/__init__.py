"""Settings from FLOWRT_* environment variables, and the Celery configuration built from them."""

from config.celery import celery_config
from config.settings import Settings, load

__all__ = ["Settings", "celery_config", "load"]

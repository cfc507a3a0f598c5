"""Settings from FLOWRT_* environment variables, and the Celery configuration built from them."""

from config.celery import celery_config
from config.settings import Settings, SettingsError, load

__all__ = ["Settings", "SettingsError", "celery_config", "load"]

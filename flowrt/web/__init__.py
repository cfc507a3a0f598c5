"""The web view: executions, their savepoint timeline, and restore from a browser (`flowrt web`)."""

from flowrt.web.app import create_app
from flowrt.web.guard import check_bind, parse_auth

__all__ = ["check_bind", "create_app", "parse_auth"]

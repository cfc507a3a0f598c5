"""Connectors: named, configured ways for a flow to reach outside systems."""

from flowrt.connectors.base import Connector, Connectors, check_config
from flowrt.connectors.rest import RestConnector
from flowrt.connectors.smtp import SmtpConnector
from flowrt.connectors.sql import SqlConnector

__all__ = [
    "Connector",
    "Connectors",
    "RestConnector",
    "SmtpConnector",
    "SqlConnector",
    "check_config",
]

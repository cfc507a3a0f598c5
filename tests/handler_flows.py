"""Flows written as the body of their handler, for the connector tests to run in a line."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from conftest import write_flow

import flowrt


def source(body: str) -> str:
    """The source of a flow whose handler is `body` (`flow_api`, `flowrt.errors` imported)."""
    head = "import flow_api\nimport flowrt.errors\n\n\ndef handler(system, this):\n"
    return head + textwrap.indent(textwrap.dedent(body), "    ")


def flow(tmp_path: Path, body: str, name: str = "flow") -> str:
    """A flow file whose handler is `body`."""
    return write_flow(tmp_path, source(body), name)


def run(tmp_path: Path, body: str, inputs: dict[str, Any] | None = None) -> flowrt.Handle:
    """Start the flow whose handler is `body` and wait (60 s at most) for it to end."""
    return flowrt.start(flow(tmp_path, body), inputs or {}).wait(60)

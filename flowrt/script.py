"""Flow scripts: compiled and checked once at start, then loaded fresh for every live execution."""

from __future__ import annotations

import builtins
import hashlib
import inspect
import linecache
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING, Any

from flowrt.errors import FlowNotFoundError, ScriptError
from flowrt.unwinding import compile_flow

if TYPE_CHECKING:
    from flowrt.storage.base import Store

FLOW = "flow"  # the kind of named object that holds a registered flow's source


@dataclass(frozen=True)
class FlowScript:
    """A flow's pinned source, compiled; `load()` gives a fresh handler with its own globals."""

    name: str
    source: str
    code: CodeType = field(repr=False)

    @property
    def filename(self) -> str:
        """The pseudo file name tracebacks and line lookups use for this flow."""
        return self.code.co_filename

    @classmethod
    def compile(cls, name: str, source: str) -> FlowScript:
        """Compile `source` and check it defines a usable `handler`; raises `ScriptError`."""
        # The source's hash keeps apart, in linecache and tracebacks, flows named alike.
        filename = (
            f"<flow {name} {hashlib.sha256(source.encode(errors='surrogatepass')).hexdigest()[:8]}>"
        )
        try:
            code = compile_flow(source, filename)
        except SyntaxError as exc:
            raise ScriptError(name, f"it does not compile: {exc.msg}", exc.lineno) from None
        script = cls(name, source, code)
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        script.load()
        return script

    def load(self, flow_import: Callable[..., Any] | None = None) -> Callable[..., Any]:
        """Run the module body in fresh globals and return its handler.

        `flow_import` replaces `__import__` for the flow's own import statements.
        """
        _expose_flow_api()
        flow_builtins: Any = builtins
        if flow_import is not None:
            flow_builtins = {**vars(builtins), "__import__": flow_import}
        namespace: dict[str, Any] = {"__name__": f"flow:{self.name}", "__builtins__": flow_builtins}
        try:
            exec(self.code, namespace)
        except Exception as exc:
            line = _line_of(exc, self.filename)
            raise ScriptError(
                self.name, f"its module body raised {type(exc).__name__}: {exc}", line
            ) from None
        handler = namespace.get("handler")
        if not callable(handler):
            raise ScriptError(self.name, "it defines no function `handler(system, this)`; add one")
        _check_signature(self.name, handler)
        return handler


def _check_signature(name: str, handler: Callable[..., Any]) -> None:
    try:
        inspect.signature(handler).bind(None, None)
        return
    except TypeError:
        pass
    try:
        inspect.signature(handler).bind(None, None, None)
    except TypeError:
        raise ScriptError(
            name,
            "its handler must take (system, this) or (system, this, inputs)",
            handler.__code__.co_firstlineno,
        ) from None


def wants_inputs(handler: Callable[..., Any]) -> bool:
    """True when the handler takes a third parameter for the inputs."""
    try:
        inspect.signature(handler).bind(None, None)
        return False
    except TypeError:
        return True


def _line_of(exc: BaseException, filename: str) -> int | None:
    tb, line = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _expose_flow_api() -> None:
    # Flows start with `import flow_api`, the name Cloudomation gives its module.
    if "flow_api" not in sys.modules:
        from flowrt import flow_api

        sys.modules["flow_api"] = flow_api


def resolve_flow(store: Store, flow: str) -> tuple[str, str]:
    """`(name, source)` of a flow file path or of a flow registered under that name."""
    path = Path(flow)
    if path.suffix == ".py" or path.is_file():
        if not path.is_file():
            raise FlowNotFoundError(flow)
        return path.stem, path.read_text()
    record = store.get_named(FLOW, flow)
    if record is None:
        raise FlowNotFoundError(flow)
    return flow, str(record.value["source"])

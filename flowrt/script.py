"""Flow scripts: compiled and checked once at start, then loaded fresh for every live execution.

The check at start runs the module body once, on a thread of its own with a deadline of
`LOAD_TIMEOUT_S`: a body that does not finish by then is interrupted (an asynchronous
exception, which stops Python code but not a call blocked in C) and the flow is refused.
"""

from __future__ import annotations

import builtins
import ctypes
import functools
import hashlib
import inspect
import linecache
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING, Any

from flowrt.errors import FlowApiError, FlowNotFoundError, FlowSignal, ScriptError
from flowrt.unwinding import compile_flow
from flowrt.values import MAX_NAME_CHARS, check_name

if TYPE_CHECKING:
    from flowrt.blobs import Signer
    from flowrt.storage.base import Store

FLOW = "flow"  # the kind of named object that holds a registered flow's source
LOAD_TIMEOUT_S = 10.0  # seconds a flow's module body may run when it is checked at start


class _LoadTimeout(BaseException):
    """Raised inside a module body that overran `LOAD_TIMEOUT_S`, to stop its thread."""


@dataclass(frozen=True)
class FlowScript:
    """A flow's pinned source, compiled; `load()` gives a fresh handler with its own globals."""

    name: str
    source: str
    code: CodeType = field(repr=False)

    @functools.cached_property
    def hash(self) -> str:
        """The short hash of its source (`script_hash`), stored with each savepoint."""
        return script_hash(self.source)

    @property
    def filename(self) -> str:
        """The pseudo file name tracebacks and line lookups use for this flow."""
        return self.code.co_filename

    @classmethod
    def compile(cls, name: str, source: str) -> FlowScript:
        """Compile `source` and check it defines a usable `handler`; raises `ScriptError`.

        The module body runs once here, for at most `LOAD_TIMEOUT_S` seconds.
        """
        try:
            check_name("start", "its name", name)
        except FlowApiError as error:
            problem = getattr(error, "problem", str(error))
            raise ScriptError(name, f"its name cannot be stored: {problem}") from None
        if "\x00" in source:
            line = source.count("\n", 0, source.index("\x00")) + 1
            raise ScriptError(name, "its source holds a NUL character (\\x00); remove it", line)
        # The source's hash keeps apart, in linecache and tracebacks, flows named alike.
        filename = (
            f"<flow {name} {hashlib.sha256(source.encode(errors='surrogatepass')).hexdigest()[:8]}>"
        )
        try:
            code = compile_flow(source, filename)
        except SyntaxError as exc:
            raise ScriptError(name, f"it does not compile: {exc.msg}", exc.lineno) from None
        except ValueError as exc:  # say, text Python cannot read as source
            raise ScriptError(name, f"it does not compile: {exc}") from None
        script = cls(name, source, code)
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        script._load_within(LOAD_TIMEOUT_S)
        return script

    def _load_within(self, timeout_s: float) -> None:
        """Run `load()` on a thread of its own; refuse the flow if it is not done in time."""
        failed: list[BaseException] = []

        def run() -> None:
            try:
                self.load()
            except _LoadTimeout:
                pass  # the caller has refused the flow already
            except BaseException as exc:  # handed to the caller, whatever it is
                failed.append(exc)

        thread = threading.Thread(target=run, name=f"flowrt-check-{self.name[:40]}", daemon=True)
        thread.start()
        thread.join(timeout_s)
        if thread.is_alive():
            line = _running_line(thread, self.filename)
            _interrupt(thread)
            raise ScriptError(
                self.name,
                f"its module body did not finish within {timeout_s:g} s; move slow work into "
                "the handler",
                line,
            )
        if failed:
            raise failed[0]

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
        except (KeyboardInterrupt, FlowSignal, _LoadTimeout):
            raise
        except BaseException as exc:  # SystemExit too: a flow cannot end its worker
            line = _line_of(exc, self.filename)
            raise ScriptError(
                self.name, f"its module body raised {type(exc).__name__}: {exc}", line
            ) from None
        handler = namespace.get("handler")
        if not callable(handler):
            raise ScriptError(self.name, "it defines no function `handler(system, this)`; add one")
        _check_signature(self.name, handler)
        return handler


def script_hash(source: str) -> str:
    """A short hash naming a flow's source: which script an execution or savepoint ran under."""
    return hashlib.sha256(source.encode(errors="surrogatepass")).hexdigest()[:12]


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


def _running_line(thread: threading.Thread, filename: str) -> int | None:
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None and frame.f_code.co_filename != filename:
        frame = frame.f_back
    return frame.f_lineno if frame is not None else None


def _interrupt(thread: threading.Thread) -> None:
    # Raised at the thread's next bytecode; a thread blocked in C (a sleep, a socket read)
    # only sees it once that call returns. It is a daemon thread: it never holds the exit.
    if thread.ident is not None:
        set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
        set_async_exc(ctypes.c_ulong(thread.ident), ctypes.py_object(_LoadTimeout))


def _expose_flow_api() -> None:
    # Flows start with `import flow_api`, the name Cloudomation gives its module.
    if "flow_api" not in sys.modules:
        from flowrt import flow_api

        sys.modules["flow_api"] = flow_api
        sys.modules["flow_api.exceptions"] = flow_api.exceptions


def read_source(path: str | Path, name: str | None = None) -> str:
    """The text of the flow file at `path`, which must be UTF-8; raises `ScriptError`."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ScriptError(
            name or path.stem,
            f"{path} is not UTF-8 text (byte 0x{data[error.start]:02x} at offset "
            f"{error.start}); save it as UTF-8",
            line,
        ) from None


def resolve_flow(store: Store, flow: str, signer: Signer) -> tuple[str, str]:
    """`(name, source)` of a flow file path or of a flow registered under that name.

    A registered flow's source is returned only once its signature is checked.
    """
    if "\x00" in flow:
        raise FlowNotFoundError(flow)
    path = Path(flow)
    try:
        is_file = path.is_file()
    except (OSError, ValueError):  # a name too long for a path, say
        is_file = False
    if path.suffix == ".py" or is_file:
        if not is_file:
            raise FlowNotFoundError(flow)
        return path.stem, read_source(path)
    if len(flow) > MAX_NAME_CHARS:
        raise FlowNotFoundError(flow)
    record = store.get_named(FLOW, flow)
    if record is None:
        raise FlowNotFoundError(flow)
    from flowrt.seals import check_flow  # seals reads storage records, which import much

    return flow, check_flow(signer, record)


def register_flow(store: Store, signer: Signer, name: str, source: str) -> int:
    """Store `source` as the flow `name`, signed, replacing one of that name; the number of
    its version (`flowrt flow versions NAME`), new unless the flow had this source before.

    It is checked as a start checks it (it compiles, its module body runs, it defines a
    handler): raises `ScriptError` and stores nothing if not. A name ending in `.py` is
    refused, as `this.flow()` would read it as a file path.
    """
    if isinstance(name, str) and name.endswith(".py"):
        raise ScriptError(name, "a name ending in .py is read as a file path; drop the .py")
    FlowScript.compile(name, source)
    from flowrt.flow_versions import record_version  # it imports this module
    from flowrt.seals import sign_flow  # seals reads storage records, which import much

    number = record_version(store, signer, name, source)
    store.put_named(FLOW, name, {"source": source}, sign_flow(signer, name, source))
    return number

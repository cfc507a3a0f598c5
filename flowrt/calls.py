"""A Flow-API call as the flow made it: name, arguments, line, digest, variables around it."""

from __future__ import annotations

import reprlib
import sys
import types
from dataclasses import dataclass, field
from typing import Any

from flowrt.fingerprint import fingerprint

_MAX_VARIABLES = 16
_MAX_ARGS_SHOWN = 120
_repr = reprlib.Repr()
_repr.maxlevel, _repr.maxstring, _repr.maxother = 2, 48, 48
_repr.maxlist, _repr.maxdict, _repr.maxtuple = 4, 4, 4
_SKIPPED_TYPES = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)


@dataclass
class Call:
    """One Flow-API call; `args`/`kwargs` live only in memory, the rest is journaled."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    line: int
    digest: bytes
    label: str | None = None
    variables: dict[str, str] | None = field(default=None, repr=False)

    def describe(self) -> str:
        """`name(args…)` shortened for messages and Flower."""
        parts = [_repr.repr(a) for a in self.args]
        parts += [f"{k}={_repr.repr(v)}" for k, v in self.kwargs.items()]
        text = f"{self.name}({', '.join(parts)})"
        return text if len(text) <= _MAX_ARGS_SHOWN else text[: _MAX_ARGS_SHOWN - 1] + "…)"


@dataclass(frozen=True)
class Outcome:
    """The answer of a performed call: a value, or an error to raise at the call site."""

    value: Any = None
    error: BaseException | None = None

    def unwrap(self) -> Any:
        """Return the value, or raise the error inside the flow."""
        if self.error is not None:
            raise self.error
        return self.value


def capture(
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    filename: str,
    *,
    label: str | None = None,
    with_variables: bool = True,
) -> Call:
    """Describe the call `name(*args, **kwargs)` the flow compiled as `filename` is making now."""
    frame = _flow_frame(filename)
    line = frame.f_lineno if frame is not None else 0
    variables = _variables(frame) if with_variables and frame is not None else None
    return Call(name, args, kwargs, line, digest(name, args, kwargs), label, variables)


# Calls whose arguments are output, not answers: replay checks only their name, since a log
# line's rendered text may hold a memory address or a set's order that no replay can repeat.
_OUTPUT_CALLS = frozenset({"log"})


def digest(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    """An 8-byte fingerprint of a call, to check a replayed call against its journal row.

    It depends on the call's name and the values of its arguments only (never on object
    identity or the hash seed); the arguments of output calls (`log`) are not part of it.
    """
    if name in _OUTPUT_CALLS:
        return fingerprint((name,))
    return fingerprint((name, args, kwargs))


def flow_line(filename: str) -> int:
    """The line the flow compiled as `filename` is running now (0 if it is not on the stack)."""
    frame = _flow_frame(filename)
    return frame.f_lineno if frame is not None else 0


def _flow_frame(filename: str) -> types.FrameType | None:
    frame: types.FrameType | None = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename != filename:
        frame = frame.f_back
    return frame


def _variables(frame: types.FrameType) -> dict[str, str]:
    from flowrt.flow_api import Execution, System

    shown: dict[str, str] = {}
    for key, value in frame.f_locals.items():
        if key.startswith("__") or isinstance(value, (*_SKIPPED_TYPES, Execution, System)):
            continue
        if len(shown) == _MAX_VARIABLES:
            shown["…"] = "more variables not shown"
            break
        try:
            shown[key] = _repr.repr(value)
        except Exception as exc:
            shown[key] = f"<repr failed: {type(exc).__name__}>"
    return shown

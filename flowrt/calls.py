"""A Flow-API call as the flow made it: name, arguments, line, digest, variables around it."""

from __future__ import annotations

import reprlib
import sys
import types
from dataclasses import dataclass, field
from typing import Any

from flowrt.connectors.masking import MASK, is_secret_name, mask_text, scrub, secrets_of
from flowrt.fingerprint import fingerprint

_MAX_VARIABLES = 16
_MAX_ARGS_SHOWN = 120
_repr = reprlib.Repr()
_repr.maxlevel, _repr.maxstring, _repr.maxother = 2, 48, 48
_repr.maxlist, _repr.maxdict, _repr.maxtuple = 4, 4, 4
_SKIPPED_TYPES = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)
# Calls whose parameters may hold credentials (inline connections, connector records): what
# describes them, and the variables stored with their savepoint, have those masked.
_SECRET_CALLS = frozenset({"connect", "connection.save"})


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
    secrets: list[str] = field(default_factory=list, repr=False)

    def describe(self) -> str:
        """`name(args…)` shortened for messages and Flower, credentials masked."""
        parts = [_shown(a, self.secrets) for a in self.args]
        parts += [f"{k}={_shown(v, self.secrets, k)}" for k, v in self.kwargs.items()]
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
    known_secrets: list[str] | None = None,
) -> Call:
    """Describe the call `name(*args, **kwargs)` the flow compiled as `filename` is making now.

    `known_secrets`, the credentials this execution's calls were given so far, are masked in
    what describes the call and in its variables; the credentials of this call are added.
    """
    frame = _flow_frame(filename)
    line = frame.f_lineno if frame is not None else 0
    secrets = known_secrets if known_secrets is not None else []
    if name in _SECRET_CALLS:
        # Kept for the execution's later calls too: their variables may still hold them.
        learned = set(secrets_of(kwargs)) - set(secrets)
        if learned:
            secrets[:] = sorted({*secrets, *learned}, key=len, reverse=True)
    variables = _variables(frame, secrets) if with_variables and frame is not None else None
    call = Call(name, args, kwargs, line, digest(name, args, kwargs), label, variables)
    call.secrets = list(secrets)
    return call


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


def _shown(value: Any, secrets: list[str], name: str = "") -> str:
    """A short repr of `value` with `secrets`, secret-named fields and URL passwords masked."""
    if not secrets and isinstance(value, (int, float, bool, type(None))):
        return _repr.repr(value)
    if isinstance(value, (str, dict, list, tuple)):
        value = scrub(value, secrets, name)
    return mask_text(_repr.repr(value), secrets)


def _variables(frame: types.FrameType, secrets: list[str]) -> dict[str, str]:
    from flowrt.flow_api import Execution, System

    shown: dict[str, str] = {}
    for key, value in frame.f_locals.items():
        if key.startswith("__") or isinstance(value, (*_SKIPPED_TYPES, Execution, System)):
            continue
        if len(shown) == _MAX_VARIABLES:
            shown["…"] = "more variables not shown"
            break
        try:
            if isinstance(value, (str, bytes)) and is_secret_name(key):
                shown[key] = MASK  # `password = ...`, read from a setting, say
            else:
                shown[key] = _shown(value, secrets, key)
        except Exception as exc:
            shown[key] = f"<repr failed: {type(exc).__name__}>"
    return shown

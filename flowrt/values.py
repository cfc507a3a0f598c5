"""Checks of the values a flow hands flowrt to store, made before the database sees them.

PostgreSQL refuses a NUL character in text, NaN and Infinity in JSON and names longer than
their column; no database stores a string that is not UTF-8 (a lone surrogate). Such a value
reaching a step's write would fail it for good, so each is refused here first, at the flow's
line, with an error the flow can catch: the refused call changes nothing and stores nothing.
The checks depend on the value only, so a replay refuses the same calls.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flowrt.errors import InvalidCallError, SerializationError, UnstorableValueError

MAX_NAME_CHARS = 200  # savepoint, setting, file, connector and flow names: String(200)
MAX_SLEEP_S = 10 * 365 * 24 * 3600.0  # the longest sleep: 10 years, in seconds


def check_text(call: str, what: str, text: str) -> str:
    """Return `text` if a database can store it; raise `UnstorableValueError` if not."""
    if "\x00" in text:
        at = text.index("\x00")
        raise UnstorableValueError(
            call, what, f"it holds a NUL character (\\x00) at position {at}; remove it"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        bad = text[error.start]
        raise UnstorableValueError(
            call,
            what,
            f"it is not valid Unicode: {bad!r} at position {error.start} cannot be encoded as "
            "UTF-8 (a lone surrogate, as from decoding bytes with 'surrogateescape'); "
            "decode the bytes with the right encoding or errors='replace'",
        ) from None
    return text


def storable_text(text: str) -> str:
    """`text` with what no database stores escaped: NUL as `\\x00`, lone surrogates as
    `\\udcXX`. For text flowrt writes itself, such as a flow's error message and traceback."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def check_name(call: str, what: str, name: object) -> str:
    """Return `name` if it can be stored as a name: a non-empty text of at most 200 characters."""
    if not isinstance(name, str):
        raise InvalidCallError(f"{call}: {what} must be a str, not {type(name).__name__}")
    if not name:
        raise InvalidCallError(f"{call}: {what} must not be empty")
    if len(name) > MAX_NAME_CHARS:
        raise UnstorableValueError(
            call,
            what,
            f"it is {len(name)} characters long, the limit is {MAX_NAME_CHARS}; use a shorter one",
        )
    return check_text(call, what, name)


def check_json(call: str, what: str, value: Any) -> Any:
    """Return `value` as JSON would bring it back, if a database can store it as JSON.

    Raises `SerializationError` for a value JSON cannot hold (an object, a cycle) and
    `UnstorableValueError` for NaN, Infinity or text a database refuses anywhere inside it.
    """
    try:
        plain = json.loads(json.dumps(value))
    except (TypeError, ValueError, RecursionError) as error:
        raise SerializationError(call, f"{what} must be JSON-serialisable: {error}") from None
    _check_inside(call, what, plain)
    return plain


def _check_inside(call: str, where: str, value: Any) -> None:
    # `value` came back from json.loads: dicts with str keys, lists, str, numbers, bool, None.
    if isinstance(value, float) and not math.isfinite(value):
        raise UnstorableValueError(
            call, where, f"JSON has no {value!r}: NaN and Infinity cannot be stored; use None"
        )
    if isinstance(value, str):
        check_text(call, where, value)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_inside(call, f"{where}[{index}]", item)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(call, f"a key of {where}", key)
            _check_inside(call, f"{where}[{key!r}]", item)


def check_count(call: str, what: str, count: object) -> int:
    """`count` if it is a whole number from 1; raises `InvalidCallError` saying so."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidCallError(
            f"{call}({what}={count!r}): {what} is a whole number from 1, or None for no limit"
        )
    return count


def check_seconds(call: str, seconds: object) -> float:
    """Return `seconds` as a float if it is a sleep flowrt can keep: 0 to `MAX_SLEEP_S`."""
    value = _finite(call, "seconds", seconds)
    if value < 0:
        raise InvalidCallError(f"{call}({value!r}): seconds must not be negative")
    if value > MAX_SLEEP_S:
        raise InvalidCallError(
            f"{call}({value!r}): the longest sleep is {MAX_SLEEP_S:.0f} s (10 years)"
        )
    return value


def check_timestamp(call: str, timestamp: object) -> float:
    """Return `timestamp` as a float if it is a finite number (how far off: see `check_wake`)."""
    return _finite(call, "the time", timestamp)


def check_wake(call: str, timestamp: float, now_s: float) -> float:
    """Return when to wake for `sleep_until(timestamp)` at `now_s`: never before now, and
    refused beyond `MAX_SLEEP_S` from now."""
    if timestamp - now_s > MAX_SLEEP_S:
        raise InvalidCallError(
            f"{call}({timestamp!r}): that is more than 10 years ({MAX_SLEEP_S:.0f} s) away"
        )
    return max(timestamp, now_s)


def _finite(call: str, what: str, number: object) -> float:
    try:
        value = float(number)  # type: ignore[arg-type]
    except OverflowError:  # an int beyond any float
        value = math.inf
    except (TypeError, ValueError):
        raise InvalidCallError(
            f"{call}({number!r}): {what} must be a number, not {type(number).__name__}"
        ) from None
    if not math.isfinite(value):
        raise InvalidCallError(f"{call}({number!r}): {what} must be a finite number")
    return value

"""Fingerprints of values: an encoding that depends on values only, then hashed.

Plain pickle bytes depend on object identity (its memo writes a shared object once, then
refers back to it) and sets come out in hash-seed order, so a replayed call with equal
arguments could fingerprint differently. A JSON-like value (the usual argument) is encoded
by pickle in fast mode (no memo: every value written in full, by its contents); any other
(a set, a cycle, an object) by a canonical encoding of its own: sets sorted by their items'
encodings, objects written as their `__reduce_ex__` parts, functions and classes by their
qualified names. Nothing from
`id()`, `hash()` or a memory address enters either, so the same values give the same bytes
in any process, under any hash seed. Dicts keep their order: it is part of what a flow
sends (a JSON body, say).
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import struct
import types
from typing import Any

_MAX_DEPTH = 64  # deeper values are fingerprinted by their type only
_REFERENCES = (
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
)


def fingerprint(value: Any) -> bytes:
    """An 8-byte digest of `value` that equal values share in every process."""
    try:
        # JSON takes only dicts, lists, tuples, strings, numbers, booleans and None, and
        # refuses cycles: such a value holds no set, and pickle writes it by value alone.
        json.dumps(value)
        data = b"p" + _pickled(value)
    except (TypeError, ValueError, RecursionError, pickle.PicklingError):
        data = b"c" + _Encoder().encode(value, 0)
    return hashlib.blake2b(data, digest_size=8).digest()


def _pickled(value: Any) -> bytes:
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=5)
    pickler.fast = True  # no memo: a shared object is written in full each time
    pickler.dump(value)
    return buffer.getvalue()


def _frame(tag: bytes, payload: bytes) -> bytes:
    # Tag plus length: no two different sequences of values encode alike.
    return tag + len(payload).to_bytes(8, "big") + payload


def _name(kind: Any) -> bytes:
    module = getattr(kind, "__module__", None) or ""
    qualname = getattr(kind, "__qualname__", None) or getattr(kind, "__name__", "?")
    return f"{module}.{qualname}".encode()


class _Encoder:
    """Encodes one value; remembers the containers it is inside, to write cycles by depth."""

    def __init__(self) -> None:
        self._open: list[int] = []  # ids of the containers being encoded, outermost first

    def encode(self, value: Any, depth: int) -> bytes:
        kind = type(value)
        if value is None or kind is bool:
            return _frame(b"c", repr(value).encode())
        if kind is int:
            return _frame(b"i", value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))
        if kind is float:
            return _frame(b"f", struct.pack(">d", value))
        if kind is str:
            return _frame(b"s", value.encode("utf-8", "surrogatepass"))
        if kind in (bytes, bytearray):
            return _frame(b"b", bytes(value))
        if isinstance(value, _REFERENCES):
            return _frame(b"r", _name(value))
        if depth >= _MAX_DEPTH:
            return _frame(b"?", _name(kind))
        if id(value) in self._open:  # a cycle: say how many levels up it points
            return _frame(b"@", str(len(self._open) - self._open.index(id(value))).encode())
        self._open.append(id(value))
        try:
            return self._container(value, kind, depth + 1)
        finally:
            self._open.pop()

    def _container(self, value: Any, kind: type, depth: int) -> bytes:
        # Subclasses of the builtin containers and scalars (enums, named tuples, ...) keep
        # their type name in front of their contents.
        typed = b"" if kind in (list, tuple, dict, set, frozenset) else _name(kind)
        if isinstance(value, (list, tuple)):
            items = b"".join(self.encode(item, depth) for item in value)
            return _frame(b"l" if isinstance(value, list) else b"t", typed + b"|" + items)
        if isinstance(value, dict):
            pairs = b"".join(
                self.encode(k, depth) + self.encode(v, depth) for k, v in value.items()
            )
            return _frame(b"d", typed + b"|" + pairs)
        if isinstance(value, (set, frozenset)):
            items = b"".join(sorted(self.encode(item, depth) for item in value))
            return _frame(b"S" if isinstance(value, set) else b"F", typed + b"|" + items)
        if isinstance(value, (int, float, str, bytes, complex)):
            return _frame(b"v", typed + b"|" + repr(value).encode())
        return self._reduced(value, kind, depth)

    def _reduced(self, value: Any, kind: type, depth: int) -> bytes:
        # An object is what pickle would rebuild it from: its constructor, arguments and
        # state; one pickle refuses (a lock, a socket, a generator) is known by its type.
        try:
            reduced = value.__reduce_ex__(4)
        except Exception:
            return _frame(b"?", _name(kind))
        if isinstance(reduced, str):  # a global, pickled by name
            return _frame(b"r", _name(kind) + b":" + reduced.encode())
        parts = list(reduced[:5]) + [None] * (5 - len(reduced[:5]))
        constructor, arguments, state, list_items, dict_items = parts
        encoded = [
            _name(constructor),
            self.encode(arguments, depth),
            self.encode(state, depth),
            self.encode(list(list_items) if list_items is not None else None, depth),
            self.encode(dict(dict_items) if dict_items is not None else None, depth),
        ]
        return _frame(b"o", _name(kind) + b"|" + b"".join(encoded))

"""Journaled entropy for flows: `os.urandom`, `secrets`, `random.SystemRandom` and unseeded
`random.Random()` read through the flow's read journal, so that replay sees the same bytes.

Each stand-in takes `read(kind, produce)`, the journal's read: live it returns `produce()` and
records it; on replay it returns the recorded value.
"""

from __future__ import annotations

import base64
import os as _os
import random as _random
import secrets as _secrets
import types
from collections.abc import Callable
from typing import Any

Reader = Callable[[str, Callable[[], Any]], Any]
_DEFAULT_TOKEN_BYTES = 32  # what `secrets` gives when no size is asked for


def copy_module(module: types.ModuleType, **overrides: Any) -> types.ModuleType:
    """A new module with `module`'s public names, and `overrides` in place of some."""
    copy = types.ModuleType(module.__name__, module.__doc__)
    copy.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    copy.__dict__.update(overrides)
    return copy


def entropy_modules(read: Reader) -> dict[str, types.ModuleType]:
    """Stand-ins for `os` and `secrets` whose entropy goes through `read`."""

    def urandom(size: int) -> bytes:
        return read("urandom", lambda: _os.urandom(size))  # type: ignore[no-any-return]

    overrides: dict[str, Any] = {"urandom": urandom}
    if hasattr(_os, "getrandom"):

        def getrandom(size: int, flags: int = 0) -> bytes:
            return read("urandom", lambda: _os.getrandom(size, flags))  # type: ignore[no-any-return]

        overrides["getrandom"] = getrandom
    return {
        "os": copy_module(_os, **overrides),
        "secrets": _secrets_module(system_random_class(read), urandom),
    }


def system_random_class(read: Reader) -> type[_random.SystemRandom]:
    """A `SystemRandom` whose primitives (and so all its methods) are journaled."""

    class SystemRandom(_random.SystemRandom):
        def random(self) -> float:
            return read("entropy", lambda: _random.SystemRandom.random(self))  # type: ignore[no-any-return]

        def getrandbits(self, k: int) -> int:
            produce = lambda: _random.SystemRandom.getrandbits(self, k)  # noqa: E731
            return read("entropy", produce)  # type: ignore[no-any-return]

        def randbytes(self, n: int) -> bytes:
            return read("urandom", lambda: _os.urandom(n))  # type: ignore[no-any-return]

    return SystemRandom


def seeded_random_class(read: Reader) -> type[_random.Random]:
    """A `random.Random` whose seed, when none is given, is a journaled read of entropy."""

    class Random(_random.Random):
        def seed(self, a: Any = None, version: int = 2) -> None:
            if a is None:  # the real one seeds itself from os.urandom
                a = read("seed", lambda: int.from_bytes(_os.urandom(32), "big"))
            super().seed(a, version)

    return Random


def _secrets_module(
    system_random: type[_random.SystemRandom], urandom: Callable[[int], bytes]
) -> types.ModuleType:
    generator = system_random()

    def token_bytes(nbytes: int | None = None) -> bytes:
        return urandom(_DEFAULT_TOKEN_BYTES if nbytes is None else nbytes)

    def token_hex(nbytes: int | None = None) -> str:
        return token_bytes(nbytes).hex()

    def token_urlsafe(nbytes: int | None = None) -> str:
        return base64.urlsafe_b64encode(token_bytes(nbytes)).rstrip(b"=").decode("ascii")

    def randbelow(exclusive_upper_bound: int) -> int:
        if exclusive_upper_bound <= 0:
            raise ValueError("Upper bound must be positive.")
        return generator._randbelow(exclusive_upper_bound)  # type: ignore[attr-defined,no-any-return]

    return copy_module(
        _secrets,
        SystemRandom=system_random,
        choice=generator.choice,
        randbelow=randbelow,
        randbits=generator.getrandbits,
        token_bytes=token_bytes,
        token_hex=token_hex,
        token_urlsafe=token_urlsafe,
    )

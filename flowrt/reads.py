"""Reads of time, randomness and uuids inside a flow, journaled so that replay sees them again.

A flow that imports `time`, `datetime`, `random`, `uuid`, `os` or `secrets` gets stand-ins
whose reads of the clock, the random generators, new uuids and entropy (`os.urandom`,
`secrets`, `SystemRandom`) go through a `ReadJournal`: live, each value is
recorded with the savepoint of the flow's next Flow-API call; on replay, the recorded value
is returned instead of a new one. Libraries the flow calls keep the real modules.
"""

from __future__ import annotations

import builtins
import datetime as _datetime
import random as _random
import threading
import time as _time
import types
import uuid as _uuid
from collections.abc import Callable
from typing import Any, NoReturn

from flowrt.calls import flow_line
from flowrt.entropy import (
    copy_module,
    entropy_modules,
    seeded_random_class,
    system_random_class,
)
from flowrt.errors import DeterminismError, DivergedSignal, ForeignThreadError

Read = tuple[str, Any]


class ReadJournal:
    """The values a flow read between consecutive Flow-API calls (one list per call)."""

    def __init__(
        self,
        recorded: list[list[Read]],
        filename: str,
        diverge: Callable[[DeterminismError], NoReturn] | None = None,
    ) -> None:
        self._recorded = recorded  # for each replayed call: what was read just before it
        self._filename = filename
        self._diverge = diverge or _raise_diverged
        self.owner: int | None = None  # the flow's thread, once it runs: the only one to read
        self._call = 0  # Flow-API calls made so far: the reads now belong to call + 1
        self._cursor = 0
        self._new: list[Read] = []

    def read(self, kind: str, produce: Callable[[], Any]) -> Any:
        """The value of a read: the recorded one when replaying, else `produce()`, recorded."""
        if self.owner is not None and threading.get_ident() != self.owner:
            raise ForeignThreadError(f"a read of {kind}", threading.current_thread().name)
        if self._call < len(self._recorded):
            values = self._recorded[self._call]
            if self._cursor < len(values) and values[self._cursor][0] == kind:
                self._cursor += 1
                return values[self._cursor - 1][1]
            self._diverged(f"reads {kind} (read #{self._cursor + 1} there)")
        value = produce()
        self._new.append((kind, value))
        return value

    def before_call(self) -> None:
        """The flow makes its next call: a replayed stretch must have read all it recorded."""
        if self._call < len(self._recorded) and self._cursor != len(self._recorded[self._call]):
            self._diverged(f"makes its next Flow-API call after {self._cursor} read(s)")
        self._call += 1
        self._cursor = 0

    def take_new(self) -> list[Read]:
        """The reads made live since the last call, to store with the next savepoint."""
        new, self._new = self._new, []
        return new

    def _diverged(self, found: str) -> None:
        values = self._recorded[self._call]
        kinds = ", ".join(kind for kind, _ in values) or "nothing"
        line = flow_line(self._filename)
        self._diverge(
            DeterminismError(
                self._call + 1,
                line,
                f"{len(values)} read(s) of {kinds} before savepoint #{self._call + 1}",
                f"{found} at line {line}",
            )
        )


def _raise_diverged(error: DeterminismError) -> NoReturn:
    raise DivergedSignal(error)


def journaled_imports(journal: ReadJournal) -> dict[str, types.ModuleType]:
    """Stand-ins for `time`, `datetime`, `random`, `uuid`, `os` and `secrets` reading through
    `journal` (of `os`, only its entropy: `urandom`, `getrandom`)."""
    now = _journaled(journal, "time", _time.time)
    return {
        "time": _time_module(journal, now),
        "datetime": _datetime_module(now),
        "random": _random_module(journal),
        "uuid": _uuid_module(journal),
        **entropy_modules(journal.read),
    }


def importer(modules: dict[str, types.ModuleType]) -> Callable[..., Any]:
    """An `__import__` that hands out `modules` for absolute imports of their names.

    `import os.path` binds the name `os`, so it gets the stand-in of `os` too.
    """

    def flow_import(
        name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
    ) -> Any:
        if level == 0 and name in modules:
            return modules[name]
        found = builtins.__import__(name, globals, locals, fromlist, level)
        top = name.partition(".")[0]
        if level == 0 and not fromlist and top in modules:
            return modules[top]
        return found

    return flow_import


def _journaled(journal: ReadJournal, kind: str, produce: Callable[[], Any]) -> Callable[[], Any]:
    def read() -> Any:
        return journal.read(kind, produce)

    read.__name__ = getattr(produce, "__name__", kind)
    return read


def _time_module(journal: ReadJournal, now: Callable[[], float]) -> types.ModuleType:
    def at(secs: float | None) -> float:
        return now() if secs is None else secs

    def struct(t: Any) -> Any:
        return _time.localtime(now()) if t is None else t

    journaled = {
        name: _journaled(journal, name, getattr(_time, name))
        for name in ("time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns")
    }
    return copy_module(
        _time,
        time=now,
        localtime=lambda secs=None: _time.localtime(at(secs)),
        gmtime=lambda secs=None: _time.gmtime(at(secs)),
        ctime=lambda secs=None: _time.ctime(at(secs)),
        asctime=lambda t=None: _time.asctime(struct(t)),
        strftime=lambda fmt, t=None: _time.strftime(fmt, struct(t)),
        **journaled,
    )


class _Like(type):
    """Makes isinstance(x, datetime) true for the real datetimes that libraries hand back."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, cls.__bases__[0])

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, cls.__bases__[0])


def _datetime_module(now: Callable[[], float]) -> types.ModuleType:
    class datetime(_datetime.datetime, metaclass=_Like):  # noqa: N801 - the stdlib's name
        def __new__(cls, *args: Any, **kwargs: Any) -> Any:
            return _datetime.datetime(*args, **kwargs)

        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return _datetime.datetime.fromtimestamp(now(), tz)

        @classmethod
        def utcnow(cls) -> Any:
            return _datetime.datetime.fromtimestamp(now(), _datetime.UTC).replace(tzinfo=None)

        @classmethod
        def today(cls) -> Any:
            return _datetime.datetime.fromtimestamp(now())

    class date(_datetime.date, metaclass=_Like):  # noqa: N801 - the stdlib's name
        def __new__(cls, *args: Any, **kwargs: Any) -> Any:
            return _datetime.date(*args, **kwargs)

        @classmethod
        def today(cls) -> Any:
            return _datetime.date.fromtimestamp(now())

    return copy_module(_datetime, datetime=datetime, date=date)


class _JournaledRandom(_random.Random):
    """A generator whose two primitives are journaled; every other method is built on them."""

    def __init__(self, journal: ReadJournal) -> None:
        self._journal = journal
        super().__init__()

    def random(self) -> float:
        return self._journal.read("random", super().random)  # type: ignore[no-any-return]

    def getrandbits(self, k: int) -> int:
        value = self._journal.read("random", lambda: super(_JournaledRandom, self).getrandbits(k))
        return value  # type: ignore[no-any-return]


def _random_module(journal: ReadJournal) -> types.ModuleType:
    generator = _JournaledRandom(journal)
    names = [n for n in _random.__all__ if n[0].islower() and callable(getattr(generator, n, None))]
    return copy_module(
        _random,
        Random=seeded_random_class(journal.read),
        SystemRandom=system_random_class(journal.read),
        **{name: getattr(generator, name) for name in names},
    )


def _uuid_module(journal: ReadJournal) -> types.ModuleType:
    return copy_module(
        _uuid,
        uuid1=_journaled(journal, "uuid1", _uuid.uuid1),
        uuid4=_journaled(journal, "uuid4", _uuid.uuid4),
    )

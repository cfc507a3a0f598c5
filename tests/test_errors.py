"""The exception tree: one root, every class documented, each one survives pickling."""

from __future__ import annotations

import inspect
import pickle

import pytest

from flowrt import errors

SAMPLES: list[BaseException] = [
    errors.FlowrtError("x"),
    errors.ConfigurationError("bad"),
    errors.ScriptError("flow", "it does not compile", 3),
    errors.FlowNotFoundError("nope"),
    errors.StorageError("x"),
    errors.SchemaError("sqlite://", None, "0001"),
    errors.ExecutionNotFoundError("abc"),
    errors.NotFoundError("setting", "s", "hint"),
    errors.InvalidStateError("id", "RUNNING", "archive", "ENDED_*"),
    errors.SavepointError("x"),
    errors.SavepointNotFoundError("id", "ref", "name"),
    errors.ForeignSavepointError("a", "s", "b"),
    errors.RestoreLoopError("s", "n", 3, 3),
    errors.TamperedSavepointError("row"),
    errors.ReplayError("x"),
    errors.DeterminismError(2, 5, "log(…) at line 5", "calls get() at line 5"),
    errors.FlowApiError("x"),
    errors.InvalidCallError("x"),
    errors.SerializationError("save", "bad"),
    errors.AnswerTooLargeError("get", 10, 5),
    errors.DependencyFailedError("c1", "child", "ENDED_ERROR", "boom"),
    errors.ConnectorError("x"),
    errors.ConnectorNotFoundError("crm"),
    errors.HttpStatusError("post", "http://x/y", 500, "down"),
    errors.ForeignThreadError("setting.get", "ThreadPoolExecutor-0_0"),
]


def all_error_classes() -> list[type[BaseException]]:
    return [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__ == errors.__name__
    ]


def test_every_error_has_a_sample_here_and_a_raised_when_docstring():
    sampled = {type(sample) for sample in SAMPLES}
    for cls in all_error_classes():
        assert (cls.__doc__ or "").startswith("Raised "), cls
        if issubclass(cls, errors.FlowrtError):
            assert cls in sampled, f"add a sample of {cls.__name__}"


def test_every_flowrt_error_derives_from_the_root_and_signals_do_not():
    for cls in all_error_classes():
        if issubclass(cls, errors.FlowSignal):
            assert not issubclass(cls, Exception)  # `except Exception` cannot swallow it
        else:
            assert issubclass(cls, errors.FlowrtError)


@pytest.mark.parametrize("error", SAMPLES, ids=lambda e: type(e).__name__)
def test_an_error_survives_pickling_and_rebuilding_from_its_args(error):
    again = pickle.loads(pickle.dumps(error))
    rebuilt = type(error)(*error.args)
    assert type(again) is type(error) and str(again) == str(error)
    assert str(rebuilt) == str(error)
    assert vars(again) == vars(error)

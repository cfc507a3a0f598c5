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
    errors.ArchivedExecutionError("abc", "2025-01-01T00:00:00+00:00"),
    errors.NotFoundError("setting", "s", "hint"),
    errors.InvalidStateError("id", "RUNNING", "archive", "ENDED_*"),
    errors.SavepointError("x"),
    errors.SavepointNotFoundError("id", "ref", "name"),
    errors.ForeignSavepointError("a", "s", "b"),
    errors.RestoreLoopError("s", "n", 3, 3),
    errors.TamperedSavepointError("row"),
    errors.TamperedSavepointError("row", "it has no signature"),
    errors.TamperedFlowError("the registered flow 'f'", "it was altered"),
    errors.ReplayError("x"),
    errors.DeterminismError(2, 5, "log(…) at line 5", "calls get() at line 5"),
    errors.FlowApiError("x"),
    errors.InvalidCallError("x"),
    errors.SerializationError("save", "bad"),
    errors.UnstorableValueError("log", "the log line", "it holds a NUL character"),
    errors.AnswerTooLargeError("get", 10, 5),
    errors.DependencyFailedError("c1", "child", "ENDED_ERROR", "boom"),
    errors.ConnectorError("x"),
    errors.ConnectorNotFoundError("crm"),
    errors.ConnectorConfigError("crm", "its base_url 'x' is not an http(s) URL"),
    errors.HttpStatusError("post", "http://x/y", 500, "down"),
    errors.RemoteCommandError("box", "root@host:22", 3, "out", "disk full"),
    errors.UnsupportedConnectionError("GOOGLE", "REST, SMTP, SQL"),
    errors.DispatchError("id", "OperationalError: Connection refused"),
    errors.ForeignThreadError("setting.get", "ThreadPoolExecutor-0_0"),
    errors.TimeoutExceededError("x"),
    errors.MessageResponseTimeoutError("m1", 5.0),
    errors.SchemaValidationError("system.message", "body['a']", "'strin' is not valid", "fix"),
    errors.MessageAnsweredError("m1", "2025-01-01T00:00:00+00:00"),
    errors.IncompatibleScriptError("e1", "diverged at savepoint #2"),
    errors.ExecutionChangedError("e1", 3, 4),
    errors.LockTimeoutError("deploy", "e1", 2.5),
    errors.UnsupportedCallError("system.user", "flowrt has no users"),
    errors.LockNotHeldError("deploy", "e1"),
    errors.LockNotHeldError("deploy", None),
]


def all_error_classes() -> list[type[BaseException]]:
    return [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__.startswith(errors.__name__)
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


# What a flow may cause with what it asks: each is a FlowApiError, its flow's `except` sees it.
FLOW_CAUSED = [
    errors.ScriptError,
    errors.FlowNotFoundError,
    errors.NotFoundError,
    errors.SavepointNotFoundError,
    errors.ForeignSavepointError,
    errors.RestoreLoopError,
    errors.InvalidCallError,
    errors.SerializationError,
    errors.UnstorableValueError,
    errors.AnswerTooLargeError,
    errors.DependencyFailedError,
    errors.ConnectorError,
    errors.ConnectorNotFoundError,
    errors.ConnectorConfigError,
    errors.HttpStatusError,
    errors.TimeoutExceededError,
    errors.MessageResponseTimeoutError,
    errors.SchemaValidationError,
    errors.UnsupportedConnectionError,
    errors.LockTimeoutError,
    errors.LockNotHeldError,
    errors.UnsupportedCallError,
]


def test_resource_not_found_error_is_cloudomations_name_for_not_found_error():
    from flowrt import flow_api

    assert flow_api.ResourceNotFoundError is errors.NotFoundError
    assert flow_api.exceptions.ResourceNotFoundError is errors.NotFoundError
    assert "ResourceNotFoundError" in flow_api.__all__


@pytest.mark.parametrize("cls", FLOW_CAUSED, ids=lambda c: c.__name__)
def test_every_error_a_flow_can_cause_is_a_flow_api_error_exported_by_flow_api(cls):
    from flowrt import flow_api

    assert issubclass(cls, errors.FlowApiError)
    assert getattr(flow_api, cls.__name__) is cls and cls.__name__ in flow_api.__all__


def test_errors_made_flow_api_errors_keep_the_bases_other_code_catches():
    assert issubclass(errors.NotFoundError, errors.StorageError)
    assert issubclass(errors.SavepointNotFoundError, errors.SavepointError)
    assert issubclass(errors.ForeignSavepointError, errors.SavepointError)
    assert issubclass(errors.RestoreLoopError, errors.SavepointError)
    assert issubclass(errors.UnstorableValueError, errors.SerializationError)
    assert issubclass(errors.ConnectorConfigError, errors.ConnectorError)


def test_faults_of_flowrt_or_of_the_database_are_not_flow_api_errors():
    for cls in (errors.TamperedSavepointError, errors.DeterminismError, errors.SchemaError):
        assert not issubclass(cls, errors.FlowApiError), cls

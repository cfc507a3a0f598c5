"""Every error flowrt raises, under one root, and the signals that end or unwind a flow."""

from __future__ import annotations


class FlowrtError(Exception):
    """Raised for any failure flowrt itself reports; the root of every flowrt error."""


class FlowApiError(FlowrtError):
    """Raised inside a flow when a Flow-API call fails; the flow may catch it.

    Every error a call raises because of what the flow asked derives from it, also those
    that live in another subtree (a missing setting is a `NotFoundError` as well).
    """


# --- configuration -------------------------------------------------------------------------


class ConfigurationError(FlowrtError):
    """Raised when a setting holds a value flowrt cannot work with; says which and how to fix."""


# --- scripts ---------------------------------------------------------------------------------


class ScriptError(FlowApiError):
    """Raised when a flow script cannot be started: it does not compile or has no handler."""

    def __init__(self, flow: str, problem: str, line: int | None = None) -> None:
        super().__init__(flow, problem, line)
        self.flow, self.problem, self.line = flow, problem, line

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"flow {self.flow!r} cannot start{where}: {self.problem}"


class FlowNotFoundError(FlowApiError):
    """Raised when a flow is neither a readable file nor the name of a registered flow."""

    def __init__(self, ref: str) -> None:
        super().__init__(ref)
        self.ref = ref

    def __str__(self) -> str:
        return (
            f"no flow {self.ref!r}: it is neither a file nor a registered flow; "
            "give a path to a .py file or register it with `flowrt flow set NAME FILE`"
        )


# --- storage -----------------------------------------------------------------------------------


class StorageError(FlowrtError):
    """Raised when the database refuses or lacks something flowrt needs."""


class SchemaError(StorageError):
    """Raised when the database schema is missing or older than this flowrt."""

    def __init__(self, url: str, found: str | None, wanted: str) -> None:
        super().__init__(url, found, wanted)
        self.url, self.found, self.wanted = url, found, wanted

    def __str__(self) -> str:
        return (
            f"database {self.url} is at schema revision {self.found or 'none'}, this flowrt "
            f"needs {self.wanted}; run `flowrt db upgrade`"
        )


class ExecutionNotFoundError(StorageError):
    """Raised when no execution has the given id."""

    def __init__(self, execution_id: str) -> None:
        super().__init__(execution_id)
        self.execution_id = execution_id

    def __str__(self) -> str:
        return f"no execution {self.execution_id!r}; `flowrt executions` lists them"


class NotFoundError(StorageError, FlowApiError):
    """Raised when a named connector, setting, file or flow does not exist."""

    def __init__(self, kind: str, name: str, hint: str = "") -> None:
        super().__init__(kind, name, hint)
        self.kind, self.name, self.hint = kind, name, hint

    def __str__(self) -> str:
        return f"no {self.kind} named {self.name!r}" + (f"; {self.hint}" if self.hint else "")


# Cloudomation's name for it (`flow_api.ResourceNotFoundError`): the same class, so that
# `except` with either name catches what flowrt raises.
ResourceNotFoundError = NotFoundError


class InvalidStateError(StorageError):
    """Raised when an execution's status does not allow the operation asked for."""

    def __init__(self, execution_id: str, status: str, operation: str, allowed: str) -> None:
        super().__init__(execution_id, status, operation, allowed)
        self.execution_id, self.status = execution_id, status
        self.operation, self.allowed = operation, allowed

    def __str__(self) -> str:
        return (
            f"cannot {self.operation} execution {self.execution_id}: it is {self.status}, "
            f"and only {self.allowed} executions allow it"
        )


# --- savepoints ---------------------------------------------------------------------------------


class SavepointError(FlowrtError):
    """Raised when a savepoint cannot be found, trusted or restored."""


class SavepointNotFoundError(SavepointError, FlowApiError):
    """Raised when a restore names a savepoint the execution does not have."""

    def __init__(self, execution_id: str, ref: str, by: str) -> None:
        super().__init__(execution_id, ref, by)
        self.execution_id, self.ref, self.by = execution_id, ref, by

    def __str__(self) -> str:
        scope = "on its current timeline" if self.by == "name" else ""
        return (
            f"execution {self.execution_id} has no savepoint with {self.by} {self.ref!r} "
            f"{scope}".rstrip()
            + "; `flowrt savepoints ID` lists them"
        )


class ForeignSavepointError(SavepointError, FlowApiError):
    """Raised when a restore names a savepoint that belongs to another execution."""

    def __init__(self, execution_id: str, savepoint_id: str, owner_id: str) -> None:
        super().__init__(execution_id, savepoint_id, owner_id)
        self.execution_id, self.savepoint_id, self.owner_id = execution_id, savepoint_id, owner_id

    def __str__(self) -> str:
        return (
            f"savepoint {self.savepoint_id} belongs to execution {self.owner_id}, not to "
            f"{self.execution_id}; an execution can only be restored to its own savepoints"
        )


class RestoreLoopError(SavepointError, FlowApiError):
    """Raised when a flow restores a savepoint more than `max_restores` times without progress."""

    def __init__(self, savepoint_id: str, name: str | None, restored: int, limit: int) -> None:
        super().__init__(savepoint_id, name, restored, limit)
        self.savepoint_id, self.name, self.restored, self.limit = (
            savepoint_id,
            name,
            restored,
            limit,
        )

    def __str__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return (
            f"restore loop: savepoint{label} ({self.savepoint_id}) was restored by its flow "
            f"{self.restored} times without getting further, the limit is {self.limit} "
            "(FLOWRT_MAX_RESTORES); "
            "read `.restored` of the object save_dump returns to stop retrying"
        )


class TamperedSavepointError(SavepointError):
    """Raised when a stored row's signature does not match: it is refused, never unpickled,
    compiled or run."""

    def __init__(self, what: str, reason: str = "") -> None:
        super().__init__(what, reason)
        self.what, self.reason = what, reason

    def __str__(self) -> str:
        reason = self.reason or (
            "it was altered in the database or written with another FLOWRT_SECRET"
        )
        return f"{self.what} failed its signature check and was not loaded: {reason}"


# --- replay -------------------------------------------------------------------------------------


class ReplayError(FlowrtError):
    """Raised when re-running a flow's handler does not retrace its journal."""


class DeterminismError(ReplayError):
    """Raised when a replayed Flow-API call differs from the call its journal recorded."""

    def __init__(self, seq: int, line: int, recorded: str, found: str) -> None:
        super().__init__(seq, line, recorded, found)
        self.seq, self.line, self.recorded, self.found = seq, line, recorded, found

    def __str__(self) -> str:
        return (
            f"replay diverged at line {self.line} (savepoint #{self.seq}): the journal recorded "
            f"{self.recorded} but the flow now {self.found}; a flow must make the same "
            "Flow-API calls with the same arguments when given the same answers - keep time, "
            "randomness and outside reads behind Flow-API calls"
        )


class IncompatibleScriptError(ReplayError):
    """Raised when a script is refused for an execution: it does not replay its journal.

    `report` is the text of the check (`flowrt check`), first divergence included.
    """

    def __init__(self, execution_id: str, report: str) -> None:
        super().__init__(execution_id, report)
        self.execution_id, self.report = execution_id, report

    def __str__(self) -> str:
        return (
            f"the script does not fit execution {self.execution_id}, which was left as it "
            f"was: {self.report}"
        )


class ExecutionChangedError(StorageError):
    """Raised when an execution moved on between the check of a script and its use."""

    def __init__(self, execution_id: str, checked: int, found: int) -> None:
        super().__init__(execution_id, checked, found)
        self.execution_id, self.checked, self.found = execution_id, checked, found

    def __str__(self) -> str:
        return (
            f"execution {self.execution_id} changed while the script was checked (version "
            f"{self.checked}, now {self.found}); nothing was changed, run the command again"
        )


# --- Flow-API -----------------------------------------------------------------------------------


class InvalidCallError(FlowApiError):
    """Raised when a Flow-API call is given arguments it cannot use."""


class UnsupportedCallError(FlowApiError, AttributeError):
    """Raised when a flow uses a part of Cloudomation's Flow-API that flowrt does not have.

    Also an `AttributeError`, which is what Python raises for a name an object lacks.
    """

    def __init__(self, call: str, why: str) -> None:
        super().__init__(call, why)
        self.call, self.why = call, why

    def __str__(self) -> str:
        return (
            f"{self.call} is Cloudomation's and flowrt does not support it: {self.why} "
            '(see "Coming from Cloudomation" in flowrt\'s README)'
        )


class SerializationError(FlowApiError):
    """Raised when a value handed to or returned by a Flow-API call cannot be stored."""

    def __init__(self, call: str, problem: str) -> None:
        super().__init__(call, problem)
        self.call, self.problem = call, problem

    def __str__(self) -> str:
        return f"{self.call}: {self.problem}"


class UnstorableValueError(SerializationError):
    """Raised when a value holds what the database would refuse: NUL, NaN, a long name, ...

    `what` names the value (say `output_value['x']`), `problem` what is wrong with it.
    """

    def __init__(self, call: str, what: str, problem: str) -> None:
        FlowApiError.__init__(self, call, what, problem)  # its args are these three
        self.call, self.what, self.problem = call, what, problem

    def __str__(self) -> str:
        return f"{self.call}: {self.what} cannot be stored: {self.problem}"


class AnswerTooLargeError(FlowApiError):
    """Raised when a Flow-API call's answer is larger than `max_answer_bytes`."""

    def __init__(self, call: str, size: int, limit: int) -> None:
        super().__init__(call, size, limit)
        self.call, self.size, self.limit = call, size, limit

    def __str__(self) -> str:
        return (
            f"the answer of {self.call} takes {self.size} bytes, above the limit of {self.limit} "
            "(FLOWRT_MAX_ANSWER_BYTES); ask for less data or raise the limit"
        )


class DependencyFailedError(FlowApiError):
    """Raised when a flow waits for its children to succeed and one of them did not."""

    def __init__(self, child_id: str, flow_name: str, status: str, message: str | None) -> None:
        super().__init__(child_id, flow_name, status, message)
        self.child_id, self.flow_name, self.status, self.message = (
            child_id,
            flow_name,
            status,
            message,
        )

    def __str__(self) -> str:
        why = f": {self.message}" if self.message else ""
        return (
            f"child execution {self.child_id} ({self.flow_name}) ended {self.status}{why}; "
            f"see `flowrt show {self.child_id}`, or wait with return_when=ALL_ENDED to carry on"
        )


# --- signals: derive from BaseException so that `except Exception` in a flow cannot swallow them


class FlowSignal(BaseException):
    """Raised inside a flow's thread to end or unwind it; never journaled."""


class EndSignal(FlowSignal):
    """Raised when the execution has ended (success, error, cancel) and its thread must unwind."""


class UnloadSignal(FlowSignal):
    """Raised when a live execution is dropped from memory; its state stays in the database."""


class StopSignal(FlowSignal):
    """Raised asynchronously in a flow's thread that flowrt stops while it runs its own code."""


class DivergedSignal(FlowSignal):
    """Raised inside a replaying flow that left its journal; carries the `DeterminismError`."""

    def __init__(self, error: DeterminismError) -> None:
        super().__init__(error)
        self.error = error


# --- broker --------------------------------------------------------------------------------------


class DispatchError(FlowrtError):
    """Raised when a step message cannot be sent (the broker is away); the lease covers it."""

    def __init__(self, execution_id: str, problem: str) -> None:
        super().__init__(execution_id, problem)
        self.execution_id, self.problem = execution_id, problem

    def __str__(self) -> str:
        return (
            f"cannot send the step of execution {self.execution_id}: {self.problem}; once its "
            "lease runs out the reaper sends it again"
        )


class ForeignThreadError(FlowApiError):
    """Raised when a Flow-API call or a journaled read comes from a thread the flow started."""

    def __init__(self, call: str, thread: str) -> None:
        super().__init__(call, thread)
        self.call, self.thread = call, thread

    def __str__(self) -> str:
        return (
            f"{self.call} came from thread {self.thread!r}, not from the flow's own "
            "thread: replay could not give each thread its own answers again. Make Flow-API "
            "calls and reads of time, random, uuid and entropy from the handler's thread, and "
            "hand their results to the threads you start"
        )


# --- stored state (continued) ----------------------------------------------------------------


class TamperedFlowError(TamperedSavepointError, FlowApiError):
    """Raised when a registered flow's stored source fails its signature check; never run."""


# --- restores (continued) ------------------------------------------------------------------------


class ArchivedExecutionError(SavepointError):
    """Raised when a restore names a savepoint of an archived execution: none are left."""

    def __init__(self, execution_id: str, archived_at: str) -> None:
        super().__init__(execution_id, archived_at)
        self.execution_id, self.archived_at = execution_id, archived_at

    def __str__(self) -> str:
        return (
            f"execution {self.execution_id} was archived at {self.archived_at}: its savepoints "
            "were deleted, so it cannot be restored; its status, outputs and logs are kept "
            "(`flowrt show ID`), start the flow again to run it anew"
        )

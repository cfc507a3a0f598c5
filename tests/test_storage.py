"""The storage contract on SQLite and PostgreSQL alike, plus migrations and signed blobs."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import PG_ADMIN_URL, SECRET, need_service

from flowrt.blobs import Signer
from flowrt.errors import (
    ExecutionNotFoundError,
    ForeignSavepointError,
    InvalidStateError,
    SavepointNotFoundError,
    SchemaError,
    TamperedSavepointError,
)
from flowrt.status import RESTORABLE, Status
from flowrt.storage import (
    ExecutionRecord,
    LogRecord,
    SavepointRecord,
    SqlStore,
    StepCommit,
    migrate,
    open_store,
)

FLOWRT = Path(sys.executable).parent / "flowrt"  # the console script of this virtualenv


# --- helpers --------------------------------------------------------------------------------


def _savepoint(
    execution: ExecutionRecord,
    seq: int,
    parent: SavepointRecord | None,
    call: str = "save_dump",
    name: str | None = None,
) -> SavepointRecord:
    return SavepointRecord(
        id=str(uuid.uuid4()),
        execution_id=execution.id,
        seq=seq,
        parent_id=parent.id if parent else None,
        call=call,
        line=10 + seq,
        name=name,
        created_at=datetime.now(UTC),
        digest=seq.to_bytes(8, "big"),
        answer=b"answer-%d" % seq if parent else None,
        variables={"seq": str(seq)},
    )


def _advance(
    store: SqlStore,
    execution_id: str,
    savepoint: SavepointRecord | None = None,
    changes: dict[str, object] | None = None,
    logs: tuple[LogRecord, ...] = (),
) -> ExecutionRecord:
    """Commit one step at the execution's current version; it must succeed."""
    version = store.get_execution(execution_id).version
    assert store.commit_step(StepCommit(execution_id, version, changes or {}, savepoint, logs))
    return store.get_execution(execution_id)


def _log(execution_id: str, seq: int, message: str) -> LogRecord:
    return LogRecord(execution_id, seq, 20 + seq, datetime.now(UTC), message)


def _chain(
    store: SqlStore, names: list[str | None]
) -> tuple[ExecutionRecord, list[SavepointRecord]]:
    """A new execution with one savepoint per entry of `names`, each the child of the last."""
    execution = store.create_execution("chain", "def handler(system, this): pass", {})
    made: list[SavepointRecord] = []
    for seq, name in enumerate(names, start=1):
        sp = _savepoint(execution, seq, made[-1] if made else None, name=name)
        _advance(store, execution.id, sp)
        made.append(sp)
    return store.get_execution(execution.id), made


def _ids(records: list[SavepointRecord]) -> list[str]:
    return [r.id for r in records]


# --- executions -----------------------------------------------------------------------------


def test_created_execution_is_running_at_version_zero_and_can_be_read_back(store: SqlStore) -> None:
    created = store.create_execution("hello", "source text", {"k": 5, "nested": {"a": [1, 2]}})
    assert created.status is Status.RUNNING
    assert created.version == 0
    assert created.head_id is None
    assert created.outputs == {}
    uuid.UUID(created.id)

    read = store.get_execution(created.id)
    assert read == created
    assert read.flow_name == "hello"
    assert read.source == "source text"
    assert read.inputs == {"k": 5, "nested": {"a": [1, 2]}}


def test_list_executions_is_newest_first_and_filters_by_status(store: SqlStore) -> None:
    first = store.create_execution("a", "s", {})
    second = store.create_execution("b", "s", {})
    third = store.create_execution("c", "s", {})
    _advance(store, second.id, changes={"status": Status.ENDED_ERROR.value})

    assert [r.id for r in store.list_executions()] == [third.id, second.id, first.id]
    assert [r.id for r in store.list_executions(limit=2)] == [third.id, second.id]
    assert [r.id for r in store.list_executions(status=Status.ENDED_ERROR)] == [second.id]
    assert [r.id for r in store.list_executions(status=Status.RUNNING)] == [third.id, first.id]
    assert store.list_executions(status=Status.PAUSED) == []


@pytest.mark.parametrize(
    "bad_id", [str(uuid.uuid4()), "not-a-uuid", "", "'; DROP TABLE executions"]
)
def test_get_execution_of_unknown_or_malformed_id_raises_execution_not_found(
    store: SqlStore, bad_id: str
) -> None:
    with pytest.raises(ExecutionNotFoundError) as caught:
        store.get_execution(bad_id)
    assert caught.value.execution_id == bad_id
    assert bad_id in str(caught.value)


def test_timestamps_come_back_timezone_aware(store: SqlStore) -> None:
    execution, (sp,) = _chain(store, ["one"])
    wake_at = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    ended_at = datetime.now(UTC)
    _advance(
        store,
        execution.id,
        changes={"wake_at": wake_at, "ended_at": ended_at, "status": Status.ENDED_SUCCESS.value},
        logs=(_log(execution.id, 1, "hi"),),
    )
    store.put_named("setting", "s", 1)

    record = store.get_execution(execution.id)
    stamps = [record.created_at, record.updated_at, record.wake_at, record.ended_at]
    stamps += [s.created_at for s in store.list_savepoints(execution.id)]
    stamps += [log.created_at for log in store.list_logs(execution.id)]
    stamps += [store.get_named("setting", "s").updated_at]  # type: ignore[union-attr]
    for stamp in stamps:
        assert stamp is not None
        assert stamp.tzinfo is not None and stamp.utcoffset() is not None, stamp
    assert record.wake_at == wake_at
    assert record.ended_at == ended_at
    assert store.get_savepoint(sp.id).created_at == sp.created_at  # type: ignore[union-attr]
    assert abs(record.created_at - datetime.now(UTC)) < timedelta(minutes=5)


# --- fenced steps ---------------------------------------------------------------------------


def test_commit_step_writes_savepoint_logs_and_changes_and_moves_the_head(store: SqlStore) -> None:
    execution = store.create_execution("f", "s", {})
    sp = _savepoint(execution, 1, None, call="log")
    done = store.commit_step(
        StepCommit(
            execution.id,
            0,
            {"outputs": {"x": 1}, "message": "m"},
            sp,
            (_log(execution.id, 1, "a"),),
        )
    )
    assert done is True
    after = store.get_execution(execution.id)
    assert (after.version, after.head_id, after.outputs, after.message) == (1, sp.id, {"x": 1}, "m")
    assert store.get_savepoint(sp.id) == sp
    assert [log.message for log in store.list_logs(execution.id)] == ["a"]


def test_commit_at_a_stale_version_returns_false_and_writes_nothing(store: SqlStore) -> None:
    execution = store.create_execution("f", "s", {})
    first = _savepoint(execution, 1, None)
    assert store.commit_step(StepCommit(execution.id, 0, {}, first, (_log(execution.id, 1, "a"),)))
    before = store.get_execution(execution.id)

    zombie = _savepoint(execution, 2, first)
    stale = StepCommit(
        execution.id,
        0,
        {"outputs": {"zombie": True}, "status": Status.ENDED_SUCCESS.value},
        zombie,
        (_log(execution.id, 2, "zombie"),),
        restored=first.id,
    )
    assert store.commit_step(stale) is False

    assert store.get_execution(execution.id) == before
    assert store.get_savepoint(zombie.id) is None
    assert _ids(store.list_savepoints(execution.id)) == [first.id]
    assert [log.message for log in store.list_logs(execution.id)] == ["a"]
    assert store.get_savepoint(first.id).restored == 0  # type: ignore[union-attr]


def test_commit_ahead_of_the_version_or_for_an_unknown_execution_changes_nothing(
    store: SqlStore,
) -> None:
    execution = store.create_execution("f", "s", {})
    ahead = _savepoint(execution, 1, None)
    assert store.commit_step(StepCommit(execution.id, 5, {}, ahead)) is False
    other = StepCommit(str(uuid.uuid4()), 0, {}, _savepoint(execution, 1, None))
    assert store.commit_step(other) is False
    assert store.list_savepoints(execution.id) == []
    assert store.get_execution(execution.id).version == 0


def test_only_one_of_two_steps_at_the_same_version_commits(store: SqlStore) -> None:
    execution = store.create_execution("f", "s", {})
    one, two = _savepoint(execution, 1, None), _savepoint(execution, 1, None)
    results = [store.commit_step(StepCommit(execution.id, 0, {}, sp)) for sp in (one, two)]
    assert results == [True, False]
    assert _ids(store.list_savepoints(execution.id)) == [one.id]
    assert store.get_execution(execution.id).head_id == one.id


# --- timelines and restore ------------------------------------------------------------------


def test_restore_then_new_savepoint_forms_a_branch_and_timeline_is_the_current_chain(
    store: SqlStore,
) -> None:
    execution, (a, b, c) = _chain(store, [None, None, None])
    assert _ids(store.get_timeline(c.id)) == [a.id, b.id, c.id]

    restored = store.restore(execution.id, a.id, RESTORABLE)
    assert restored.head_id == a.id
    assert restored.version == execution.version + 1
    d = _savepoint(restored, 2, a)
    after = _advance(store, execution.id, d)
    e = _savepoint(after, 3, d)
    _advance(store, execution.id, e)

    assert _ids(store.get_timeline(e.id)) == [a.id, d.id, e.id]
    assert _ids(store.get_timeline(d.id)) == [a.id, d.id]
    assert _ids(store.get_timeline(c.id)) == [a.id, b.id, c.id]  # the old branch is still there
    assert _ids(store.get_timeline(a.id)) == [a.id]
    assert _ids(store.list_savepoints(execution.id)) == [a.id, b.id, c.id, d.id, e.id]


def test_a_timeline_for_replay_leaves_out_only_the_variables_snapshot(store: SqlStore) -> None:
    _, (a, b) = _chain(store, [None, None])
    full, lean = store.get_timeline(b.id), store.get_timeline(b.id, variables=False)
    assert [sp.variables for sp in full] == [a.variables, b.variables] != [None, None]
    assert [sp.variables for sp in lean] == [None, None]
    assert [replace(sp, variables=None) for sp in full] == lean


def test_timeline_of_one_execution_never_includes_savepoints_of_another(store: SqlStore) -> None:
    _, (a1, b1) = _chain(store, [None, None])
    _, (a2, b2) = _chain(store, [None, None])
    assert _ids(store.get_timeline(b1.id)) == [a1.id, b1.id]
    assert _ids(store.get_timeline(b2.id)) == [a2.id, b2.id]


def test_find_named_returns_the_newest_of_that_name_on_the_current_timeline_only(
    store: SqlStore,
) -> None:
    execution, (a, b, c) = _chain(store, ["mark", "mark", "other"])
    assert store.find_named(c.id, "mark") == store.get_savepoint(b.id)
    assert store.find_named(a.id, "mark") == store.get_savepoint(a.id)
    assert store.find_named(c.id, "absent") is None

    store.restore(execution.id, a.id, RESTORABLE)
    d = _savepoint(execution, 2, a, name="unrelated")
    _advance(store, execution.id, d)

    # b is newer and named "mark", but it is on the abandoned branch.
    found = store.find_named(d.id, "mark")
    assert found is not None and found.id == a.id
    assert store.find_named(d.id, "other") is None


def test_restore_counts_restores_and_clears_the_error(store: SqlStore) -> None:
    execution, (a, b) = _chain(store, ["mark", None])
    _advance(
        store,
        execution.id,
        changes={
            "status": Status.ENDED_ERROR.value,
            "error": "Traceback ...",
            "error_line": 7,
            "ended_at": datetime.now(UTC),
        },
    )
    assert store.get_savepoint(a.id).restored == 0  # type: ignore[union-attr]

    first = store.restore(execution.id, a.id, RESTORABLE)
    assert first.status is Status.RUNNING
    assert (first.error, first.error_line, first.ended_at) == (None, None, None)
    assert store.get_savepoint(a.id).restored == 1  # type: ignore[union-attr]
    assert store.get_savepoint(b.id).restored == 0  # type: ignore[union-attr]

    second = store.restore(execution.id, a.id, RESTORABLE)
    assert second.version == first.version + 1
    assert store.get_savepoint(a.id).restored == 2  # type: ignore[union-attr]


def test_commit_step_with_restored_counts_a_restore_made_from_inside_the_flow(
    store: SqlStore,
) -> None:
    execution, (a, _) = _chain(store, ["mark", None])
    assert store.commit_step(
        StepCommit(execution.id, execution.version, {"head_id": a.id}, restored=a.id)
    )
    assert store.get_execution(execution.id).head_id == a.id
    assert store.get_savepoint(a.id).restored == 1  # type: ignore[union-attr]


def _assert_unchanged(store: SqlStore, before: ExecutionRecord, sps: list[SavepointRecord]) -> None:
    after = store.get_execution(before.id)
    assert (after.version, after.head_id, after.status) == (
        before.version,
        before.head_id,
        before.status,
    )
    assert after == before
    assert [s.restored for s in store.list_savepoints(before.id)] == [s.restored for s in sps]


def test_restore_refuses_a_savepoint_of_another_execution_and_changes_nothing(
    store: SqlStore,
) -> None:
    execution, mine = _chain(store, [None, None])
    other, (theirs, _) = _chain(store, [None, None])
    with pytest.raises(ForeignSavepointError) as caught:
        store.restore(execution.id, theirs.id, RESTORABLE)
    assert caught.value.owner_id == other.id
    assert theirs.id in str(caught.value)
    _assert_unchanged(store, execution, mine)
    assert store.get_savepoint(theirs.id).restored == 0  # type: ignore[union-attr]


@pytest.mark.parametrize("ref", [str(uuid.uuid4()), "not-a-uuid", ""])
def test_restore_refuses_an_unknown_or_malformed_savepoint_id_and_changes_nothing(
    store: SqlStore, ref: str
) -> None:
    execution, mine = _chain(store, [None, None])
    with pytest.raises(SavepointNotFoundError) as caught:
        store.restore(execution.id, ref, RESTORABLE)
    assert caught.value.execution_id == execution.id
    _assert_unchanged(store, execution, mine)


@pytest.mark.parametrize("status", [Status.ENDED_SUCCESS, Status.ENDED_CANCELLED])
def test_restore_refuses_a_status_not_allowed_and_changes_nothing(
    store: SqlStore, status: Status
) -> None:
    execution, (a, b) = _chain(store, [None, None])
    ended = _advance(store, execution.id, changes={"status": status.value})
    with pytest.raises(InvalidStateError) as caught:
        store.restore(execution.id, a.id, RESTORABLE)
    assert caught.value.status == status.value
    assert status.value in str(caught.value)
    _assert_unchanged(store, ended, [a, b])


def test_restore_of_an_unknown_execution_raises_execution_not_found(store: SqlStore) -> None:
    _, (a,) = _chain(store, [None])
    with pytest.raises(ExecutionNotFoundError):
        store.restore(str(uuid.uuid4()), a.id, RESTORABLE)
    assert store.get_savepoint(a.id).restored == 0  # type: ignore[union-attr]


# --- archive --------------------------------------------------------------------------------


def test_archive_deletes_savepoints_and_keeps_status_outputs_and_logs(store: SqlStore) -> None:
    execution, (a, b) = _chain(store, ["mark", None])
    _advance(
        store,
        execution.id,
        changes={
            "status": Status.ENDED_SUCCESS.value,
            "outputs": {"result": [1, 2]},
            "message": "all done",
        },
        logs=(_log(execution.id, 1, "first"), _log(execution.id, 2, "second")),
    )
    _, (foreign,) = _chain(store, [None])

    archived = store.archive(execution.id)

    assert archived.archived_at is not None and archived.archived_at.tzinfo is not None
    assert archived.status is Status.ENDED_SUCCESS
    assert archived.outputs == {"result": [1, 2]}
    assert archived.message == "all done"
    assert store.list_savepoints(execution.id) == []
    assert store.get_savepoint(a.id) is None and store.get_savepoint(b.id) is None
    assert [log.message for log in store.list_logs(execution.id)] == ["first", "second"]
    assert store.get_savepoint(foreign.id) is not None  # other executions keep theirs
    assert store.get_execution(execution.id) == archived


def test_archive_refuses_an_execution_that_has_not_ended(store: SqlStore) -> None:
    execution, sps = _chain(store, [None, None])
    with pytest.raises(InvalidStateError):
        store.archive(execution.id)
    _assert_unchanged(store, execution, sps)
    assert store.get_execution(execution.id).archived_at is None


def test_archive_of_an_unknown_execution_raises_execution_not_found(store: SqlStore) -> None:
    with pytest.raises(ExecutionNotFoundError):
        store.archive(str(uuid.uuid4()))


# --- named objects --------------------------------------------------------------------------


def test_named_objects_put_get_list_replace_and_delete(store: SqlStore) -> None:
    store.put_named("connector", "db", {"type": "sql", "url": "sqlite://"})
    store.put_named("connector", "api", {"type": "rest", "base_url": "http://x"})
    store.put_named("setting", "db", [1, "two", None])

    got = store.get_named("connector", "db")
    assert got is not None
    assert (got.kind, got.name, got.value) == (
        "connector",
        "db",
        {"type": "sql", "url": "sqlite://"},
    )
    assert store.get_named("setting", "db").value == [1, "two", None]  # type: ignore[union-attr]
    assert [r.name for r in store.list_named("connector")] == ["api", "db"]
    assert store.get_named("connector", "missing") is None
    assert store.get_named("flow", "db") is None

    store.put_named("connector", "db", {"type": "sql", "url": "sqlite:///new.db"})
    assert store.get_named("connector", "db").value["url"] == "sqlite:///new.db"  # type: ignore[union-attr]
    assert len(store.list_named("connector")) == 2

    assert store.delete_named("connector", "db") is True
    assert store.get_named("connector", "db") is None
    assert store.delete_named("connector", "db") is False
    assert store.get_named("setting", "db") is not None  # same name, other kind: untouched
    assert [r.name for r in store.list_named("connector")] == ["api"]


def test_named_files_keep_their_bytes_exactly(store: SqlStore) -> None:
    content = bytes(range(256)) * 3 + b"\x00end"
    store.put_named("file", "blob.bin", content)
    got = store.get_named("file", "blob.bin")
    assert got is not None
    assert isinstance(got.value, bytes)
    assert got.value == content

    store.put_named("file", "blob.bin", bytearray(b"second"))
    assert store.get_named("file", "blob.bin").value == b"second"  # type: ignore[union-attr]
    store.put_named("file", "blob.bin", {"now": "json"})
    assert store.get_named("file", "blob.bin").value == {"now": "json"}  # type: ignore[union-attr]
    assert [r.value for r in store.list_named("file")] == [{"now": "json"}]


# --- migrations -----------------------------------------------------------------------------


def test_open_store_on_a_fresh_sqlite_file_migrates_by_itself(tmp_path: Path) -> None:
    path = tmp_path / "deeper" / "fresh.db"
    store = open_store(f"sqlite:///{path}")
    try:
        assert path.exists()
        assert migrate.current_revision(store.engine) == migrate.head_revision() != ""
        tables = set(sa.inspect(store.engine).get_table_names())
        assert {"executions", "savepoints", "logs", "named"} <= tables
        created = store.create_execution("f", "s", {})
    finally:
        store.close()
    again = open_store(f"sqlite:///{path}")  # a second open finds it current and keeps data
    try:
        assert again.get_execution(created.id).id == created.id
    finally:
        again.close()


@pytest.fixture
def empty_pg_database() -> Iterator[str]:
    """A throwaway PostgreSQL database with no schema, dropped afterwards."""
    need_service("PostgreSQL", 5432)
    name = f"flowrt_empty_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@pytest.mark.postgres
def test_postgresql_without_schema_says_to_run_db_upgrade_and_db_upgrade_fixes_it(
    empty_pg_database: str, tmp_path: Path
) -> None:
    with pytest.raises(SchemaError) as caught:
        open_store(empty_pg_database)
    assert "flowrt db upgrade" in str(caught.value)
    assert caught.value.found is None
    assert caught.value.wanted == migrate.head_revision()

    env = {
        **os.environ,
        "FLOWRT_DATABASE_URL": empty_pg_database,
        "FLOWRT_HOME": str(tmp_path / "home"),
        "FLOWRT_SECRET": SECRET,
    }
    done = subprocess.run(
        [str(FLOWRT), "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert migrate.head_revision() in done.stdout

    store = open_store(empty_pg_database)
    try:
        created = store.create_execution("f", "s", {"k": 1})
        assert store.get_execution(created.id).inputs == {"k": 1}
    finally:
        store.close()

    again = subprocess.run(
        [str(FLOWRT), "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr  # upgrading a current database is harmless


# --- signed blobs ---------------------------------------------------------------------------


class WritesFileWhenUnpickled:
    """A payload whose unpickling has a visible side effect: it creates `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


KEY = b"0123456789abcdef-the-right-key"


def test_signer_round_trips_values() -> None:
    signer = Signer(KEY)
    value = {
        "rows": [{"a": 1, "b": None}],
        "set": {1, 2, 3},
        "when": datetime(2024, 5, 6, tzinfo=UTC),
        "bytes": b"\x00\xff",
        "error": ValueError("kept"),
    }
    back = signer.loads(signer.dumps(value), "test blob")
    assert {k: v for k, v in back.items() if k != "error"} == {
        k: v for k, v in value.items() if k != "error"
    }
    assert isinstance(back["error"], ValueError) and back["error"].args == ("kept",)
    square = signer.loads(signer.dumps(lambda x: x * x), "a function")
    assert square(7) == 49


def test_the_side_effect_payload_really_runs_when_unpickled_legitimately(tmp_path: Path) -> None:
    # The control for the tamper tests below: the payload does have a side effect.
    marker = tmp_path / "ran"
    signer = Signer(KEY)
    handle = signer.loads(signer.dumps(WritesFileWhenUnpickled(marker)), "control")
    handle.close()
    assert marker.exists()


def _flip(blob: bytes, index: int) -> bytes:
    data = bytearray(blob)
    data[index] ^= 0x01
    return bytes(data)


def _check_then_load(signer: Signer, signature: bytes | None, blob: bytes) -> object:
    # What the journal does: the row's signature is checked before its blob is unpickled.
    signer.check(signature, "test/1", ("place", blob), "savepoint #3")
    return signer.loads(blob, "savepoint #3")


@pytest.mark.parametrize("where", ["signature", "kind", "payload-start", "payload-end"])
def test_a_flipped_byte_raises_tampered_without_unpickling(tmp_path: Path, where: str) -> None:
    marker = tmp_path / "ran"
    signer = Signer(KEY)
    blob = signer.dumps(WritesFileWhenUnpickled(marker))
    signature = signer.sign("test/1", ("place", blob))
    if where == "signature":
        signature = _flip(signature, 7)
    else:
        index = {"kind": 0, "payload-start": 3, "payload-end": len(blob) - 2}[where]
        blob = _flip(blob, index)
    with pytest.raises(TamperedSavepointError) as caught:
        _check_then_load(signer, signature, blob)
    assert "savepoint #3" in str(caught.value)
    assert not marker.exists()


def test_a_blob_signed_with_another_secret_raises_tampered_without_unpickling(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    other = Signer(b"another-secret-of-someone-else")
    blob = other.dumps(WritesFileWhenUnpickled(marker))
    with pytest.raises(TamperedSavepointError) as caught:
        _check_then_load(Signer(KEY), other.sign("test/1", ("place", blob)), blob)
    assert "FLOWRT_SECRET does not list" in str(caught.value)
    assert not marker.exists()


def test_an_unsigned_or_truncated_signature_raises_tampered_without_unpickling(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    signer = Signer(KEY)
    blob = signer.dumps(WritesFileWhenUnpickled(marker))
    good = signer.sign("test/1", ("place", blob))
    for signature in (None, b"", good[:4], good[:-1], good + b"\x00"):
        with pytest.raises(TamperedSavepointError):
            _check_then_load(signer, signature, blob)
    assert not marker.exists()


def test_a_signature_is_bound_to_its_place_and_field_boundaries() -> None:
    signer = Signer(KEY)
    signature = signer.sign("test/1", ("ab", "c"))
    signer.check(signature, "test/1", ("ab", "c"), "row")
    for domain, fields in [("test/2", ("ab", "c")), ("test/1", ("a", "bc")), ("test/1", ("ab",))]:
        with pytest.raises(TamperedSavepointError):
            signer.check(signature, domain, fields, "row")

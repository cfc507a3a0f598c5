"""A step's commit on PostgreSQL goes straight to the driver on a pool of its own
(flowrt/storage/step_sql.py): its faults must still come out as SQLAlchemy's, told transient
or permanent as before, without the parameters, and a broken connection must not be used
again. The same commits through real workers: tests/test_write_faults.py."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import run_flow

import flowrt
from flowrt.status import Status
from flowrt.storage import open_store
from flowrt.storage.base import StepCommit
from flowrt.storage.faults import is_permanent, is_transient

pytestmark = pytest.mark.postgres

SECRET = "s3cr3t-value-0f-a-flow"


@pytest.fixture
def pg_store(pg_clean):
    store = open_store(pg_clean, pre_ping=False)  # as a worker opens it: the step retries
    yield store
    store.close()


def _on_others(url: str, expression: str) -> int:
    """`expression` over the other connections to the test database (pg_stat_activity)."""
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        value = conn.exec_driver_sql(
            f"SELECT {expression} FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).scalar()
    admin.dispose()
    return int(value)


def _running(store) -> str:
    return store.create_execution("flow", "def handler(system, this):\n    pass\n", {}).id


def test_the_fence_holds_on_the_direct_path(pg_store) -> None:
    execution_id = _running(pg_store)
    version = pg_store.get_execution(execution_id).version
    assert pg_store.commit_step(StepCommit(execution_id, version, {"message": "one"}))
    # The same version again: the fence refuses it, and nothing changes.
    assert not pg_store.commit_step(StepCommit(execution_id, version, {"message": "two"}))
    record = pg_store.get_execution(execution_id)
    assert (record.version, record.message) == (version + 1, "one")


def _idle_backends(store, count: int) -> list[int]:
    """The backend pids of `count` connections of the store's pool, left idle in it."""
    held = [store.engine.raw_connection() for _ in range(count)]
    pids = []
    for fairy in held:
        with fairy.dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pids.append(cursor.fetchone()[0])
    for fairy in held:
        fairy.close()
    return pids


def test_after_a_server_restart_one_commit_fails_and_the_next_goes_through(
    pg_store, pg_clean
) -> None:
    """Every idle connection of the pool dies with the server: the first commit fails (a
    transient error, parameters hidden) and marks the whole pool stale, so the retry gets a
    new connection rather than the next dead one."""
    execution_id = _running(pg_store)
    version = pg_store.get_execution(execution_id).version
    assert pg_store.commit_step(StepCommit(execution_id, version, {"message": "warm"}))
    pids = ", ".join(str(pid) for pid in _idle_backends(pg_store, 4))
    killed = _on_others(
        pg_clean, f"count(pg_terminate_backend(pid)) FILTER (WHERE pid IN ({pids}))"
    )
    assert killed == 4
    with pytest.raises(sa.exc.OperationalError) as raised:
        pg_store.commit_step(StepCommit(execution_id, version + 1, {"message": SECRET}))
    assert is_transient(raised.value)
    assert raised.value.connection_invalidated
    assert SECRET not in str(raised.value)
    assert pg_store.commit_step(StepCommit(execution_id, version + 1, {"message": "after"}))
    assert pg_store.get_execution(execution_id).message == "after"


def test_a_connection_goes_back_to_the_pool_out_of_autocommit(pg_store) -> None:
    execution_id = _running(pg_store)
    assert pg_store.commit_step(StepCommit(execution_id, 0, {"message": "stored"}))
    with pg_store.engine.connect() as conn:  # the connection the commit used, transactional
        assert conn.connection.dbapi_connection.autocommit is False
        conn.exec_driver_sql("UPDATE executions SET message = 'rolled back'")
        conn.rollback()
    assert pg_store.get_execution(execution_id).message == "stored"


def test_a_connection_that_cannot_leave_autocommit_is_not_given_back(pg_store, monkeypatch) -> None:
    import psycopg

    switch = psycopg.Connection.autocommit

    def refuse_to_leave(self, value: bool) -> None:
        if not value:
            raise psycopg.ProgrammingError("cannot change autocommit now")
        switch.fset(self, value)

    execution_id = _running(pg_store)
    monkeypatch.setattr(psycopg.Connection, "autocommit", property(switch.fget, refuse_to_leave))
    with pytest.raises(sa.exc.ProgrammingError):
        pg_store.commit_step(StepCommit(execution_id, 0, {"message": "x"}))
    monkeypatch.undo()
    with pg_store.engine.connect() as conn:  # whatever connection the pool gives now
        assert conn.connection.dbapi_connection.autocommit is False


def test_a_refused_value_is_a_permanent_sqlalchemy_error_without_the_parameters(
    pg_store,
) -> None:
    execution_id = _running(pg_store)
    version = pg_store.get_execution(execution_id).version
    bad = {"status": f"NOT-A-STATUS-{SECRET}" * 4}  # longer than the column allows
    with pytest.raises(sa.exc.DBAPIError) as raised:
        pg_store.commit_step(StepCommit(execution_id, version, bad))
    assert is_permanent(raised.value) and not is_transient(raised.value)
    assert SECRET not in str(raised.value)
    record = pg_store.get_execution(execution_id)
    assert (record.version, record.status) == (version, Status.RUNNING)


def _others(url: str) -> int:
    """Connections to the test database other than the one asking."""
    return _on_others(url, "count(*)")


def test_the_direct_path_opens_no_pool_of_its_own(pg_clean) -> None:
    before = _others(pg_clean)
    store = open_store(pg_clean)
    execution_id = _running(store)
    assert store.commit_step(StepCommit(execution_id, 0, {"message": "x"}))
    assert _others(pg_clean) == before + 1  # one pool, one connection for all of it
    store.close()
    assert _others(pg_clean) == before, "the store left connections open"


HOSTILE = """
import flow_api

def handler(system, this):
    weird = "a\\x00b"
    nan = float("nan")
    big = "x" * 3_000_000
    this.get("input_value")
    raise ValueError("bad\\x00data " + str(nan))
"""


def test_a_flows_hostile_data_reaches_the_direct_commit_stored_not_refused(
    flowrt_env, pg_clean, tmp_path
) -> None:
    """Through `flowrt.start` on PostgreSQL (the step commits take the direct path): a NUL in
    a variable and in the error, NaN, a 3 MB string - each savepoint is stored and the
    execution ends with its error, rather than a driver refusal retried or lost."""
    flowrt_env(FLOWRT_DATABASE_URL=pg_clean)
    handle = run_flow(flowrt.default_client(), tmp_path, HOSTILE)
    record = handle.record()
    assert record.status is Status.ENDED_ERROR
    assert record.message == "ValueError: bad\\x00data nan"
    (get,) = [sp for sp in handle.savepoints() if sp.call == "get"]
    assert get.variables is not None
    assert "\x00" not in str(get.variables) and "\\x00" in get.variables["weird"]
    assert len(get.variables["big"]) < 1000  # a bounded snapshot, not the 3 MB

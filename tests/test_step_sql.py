"""A step's commit on PostgreSQL goes straight to the driver on a pool of its own
(flowrt/storage/step_sql.py): its faults must still come out as SQLAlchemy's, told transient
or permanent as before, without the parameters, and a broken connection must not be used
again. The same commits through real workers: tests/test_write_faults.py."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from flowrt.status import Status
from flowrt.storage import open_store
from flowrt.storage.base import StepCommit
from flowrt.storage.faults import is_permanent, is_transient

pytestmark = pytest.mark.postgres

SECRET = "s3cr3t-value-0f-a-flow"


@pytest.fixture
def pg_store(pg_clean):
    store = open_store(pg_clean)
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


def test_a_terminated_connection_is_a_transient_sqlalchemy_error_and_is_not_used_again(
    pg_store, pg_clean
) -> None:
    execution_id = _running(pg_store)
    version = pg_store.get_execution(execution_id).version
    assert pg_store.commit_step(StepCommit(execution_id, version, {"message": "warm"}))
    # The backend of the direct pool's (only) connection, as a server restart would end it.
    pooled = pg_store._one_statement._pool().raw_connection()
    cursor = pooled.cursor()
    cursor.execute("SELECT pg_backend_pid()")
    (pid,) = cursor.fetchone()
    cursor.close()
    pooled.close()
    assert _on_others(pg_clean, f"count(pg_terminate_backend(pid)) FILTER (WHERE pid = {pid})")
    with pytest.raises(sa.exc.OperationalError) as raised:
        pg_store.commit_step(StepCommit(execution_id, version + 1, {"message": SECRET}))
    assert is_transient(raised.value)
    assert raised.value.connection_invalidated
    assert SECRET not in str(raised.value)
    # The retry gets a new connection and goes through.
    assert pg_store.commit_step(StepCommit(execution_id, version + 1, {"message": "after"}))
    assert pg_store.get_execution(execution_id).message == "after"


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


def test_closing_the_store_closes_the_direct_pool_too(pg_clean) -> None:
    before = _others(pg_clean)
    store = open_store(pg_clean)
    execution_id = _running(store)
    assert store.commit_step(StepCommit(execution_id, 0, {"message": "x"}))
    assert _others(pg_clean) >= before + 2  # its own pool and the direct one
    store.close()
    assert _others(pg_clean) == before, "the store left connections open"

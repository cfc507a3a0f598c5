"""Redis away when a step sends the next one: the savepoint of the call just performed is still
stored, and the execution goes on once Redis is back, without performing that call again."""

from __future__ import annotations

import textwrap
from collections import Counter

import pytest
import sqlalchemy as sa
from conftest import WorkerProcesses, wait_until, write_flow
from test_faults import private_redis  # noqa: F401 - a fixture: a Redis to stop
from test_write_faults import CountingService

import flowrt
from flowrt.status import Status

TWO_POSTS = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        this.connect('svc', method='post', path='/held')
        this.connect('svc', method='post', path='/after')
        return this.success('both posted')
""")


@pytest.fixture
def service():
    running = CountingService()
    running.held_path = "/held"
    yield running
    running.release.set()
    running.stop()


def savepoints_of(url: str, execution_id: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            query = sa.text("SELECT count(*) FROM savepoints WHERE execution_id = :id")
            return int(conn.execute(query, {"id": execution_id}).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_call_is_not_performed_again_when_redis_is_away_as_its_step_sends_the_next(
    flowrt_env, pg_clean, request, tmp_path, service
):
    redis_server = request.getfixturevalue("private_redis")  # of test_faults
    env = flowrt_env(
        FLOWRT_DATABASE_URL=pg_clean,
        FLOWRT_BROKER_URL=redis_server.url,
        FLOWRT_LEASE_SECONDS="2",
    )
    workers = WorkerProcesses(env, tmp_path)
    try:
        workers.start("w")
        workers.start_beat()
        flowrt.default_client().set_connector("svc", "rest", base_url=service.base_url)
        handle = flowrt.start(write_flow(tmp_path, TWO_POSTS))

        # The first POST is in flight: Redis goes away before its step sends the next one.
        assert service.arrived.wait(60), "the first POST never came"
        redis_server.stop()
        service.release.set()
        wait_until(lambda: b"cannot send the step" in workers.log("w"), 60, "the send to fail")
        # Stored all the same: the savepoint of the second POST, with the first one's answer.
        assert savepoints_of(pg_clean, handle.id) == 2
        assert handle.record().status is Status.RUNNING

        redis_server.start()
        record = handle.wait(90).record()
        logs = workers.logs()
    finally:
        workers.stop_all()

    assert record.status is Status.ENDED_SUCCESS, f"{record.message}\n{record.error}"
    assert service.posts == Counter({"/held": 1, "/after": 1})
    assert "the reaper sends it again" in logs

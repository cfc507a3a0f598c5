"""Each distinct flow source is stored once (`scripts`, by SHA-256), and migration 0013 moves
existing executions' copies there: on SQLite and PostgreSQL, with no source lost or unsigned."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import SECRET
from test_fix_script import FAILING, FIXED, CountingApi, api, failed, invoke  # noqa: F401

import flowrt
from flowrt.blobs import Signer
from flowrt.client import Client
from flowrt.errors import TamperedSavepointError
from flowrt.seals import check_execution, sign_execution
from flowrt.status import Status
from flowrt.storage import migrate, scripts
from flowrt.storage.sql import SqlStore

UNICODE = FIXED + "# grüße, 10 €\n"  # hashed alike in Python and in PostgreSQL's migration
BIG = "def handler(system, this):\n    return this.success('big')\n" + "# padding\n" * 2048


def create(store: SqlStore, signer: Signer, source: str, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        record = store.create_execution("flow", source, {}, status=Status.PAUSED)
        signature = sign_execution(signer, record.id, "flow", source, {}, None)
        with store.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE executions SET signature = :s WHERE id = :i"),
                {"s": signature, "i": record.id.replace("-", "")},
            )
        ids.append(record.id)
    return ids


def scalar(store: SqlStore, sql: str) -> object:
    with store.engine.connect() as conn:
        return conn.exec_driver_sql(sql).scalar()


def test_the_migration_keeps_one_copy_per_source_and_every_execution_its_own(
    store: SqlStore,
) -> None:
    signer = Signer(SECRET.encode())
    ids = create(store, signer, FAILING, 25) + create(store, signer, UNICODE, 25)
    migrate.downgrade(store.engine, "0012")  # as a database of 0012 holds them: 50 copies
    try:
        assert scalar(store, "SELECT count(*) FROM executions WHERE source IS NULL") == 0
        assert scalar(store, "SELECT count(DISTINCT source) FROM executions") == 2
    finally:
        migrate.upgrade(store.engine)
    assert scalar(store, "SELECT count(*) FROM scripts") == 2
    assert scalar(store, "SELECT count(*) FROM executions WHERE source IS NOT NULL") == 0
    assert scalar(store, "SELECT count(DISTINCT script) FROM executions") == 2
    with store.engine.connect() as conn:
        hashes = set(conn.exec_driver_sql("SELECT hash FROM scripts").scalars())
    assert hashes == {scripts.source_hash(FAILING), scripts.source_hash(UNICODE)}
    scripts.forget()  # read the texts from the database, not from this process
    records = store.get_executions(ids)
    assert sorted(r.source for r in records) == sorted([FAILING] * 25 + [UNICODE] * 25)
    for record in records:
        check_execution(signer, record)  # still signed for its text


def test_a_thousand_executions_of_one_20_kb_flow_hold_one_copy(store: SqlStore) -> None:
    assert len(BIG) > 20_000
    for _ in range(1000):
        store.create_execution("big", BIG, {})
    assert scalar(store, "SELECT count(*) FROM scripts") == 1
    assert scalar(store, "SELECT sum(length(source)) FROM scripts") == len(BIG)
    assert scalar(store, "SELECT count(*) FROM executions WHERE source IS NOT NULL") == 0
    assert all(r.source == BIG for r in store.list_executions(limit=1000))


def test_a_listing_reads_the_sources_it_lacks_in_one_query(store: SqlStore) -> None:
    for source in (FAILING, FIXED, BIG):
        for _ in range(10):
            store.create_execution("flow", source, {})
    scripts.forget()
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        listed = store.list_executions(limit=100)
        again = store.list_executions(limit=100)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)
    assert len(listed) == len(again) == 30
    assert {r.source for r in listed} == {FAILING, FIXED, BIG}
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    reads = [s for s in selects if "scripts" in s]
    assert len(reads) == 1, selects  # the second listing knows them all
    assert len(selects) == 3, selects


def test_an_errored_execution_migrated_from_0012_replays_and_restores_under_a_fix(
    api: CountingApi,  # noqa: F811 - the fixture imported above
    client: Client,
    tmp_path: Path,
) -> None:
    first, second = failed(tmp_path), failed(tmp_path)
    assert api.count("/items") == 2
    migrate.downgrade(client.store.engine, "0012")
    migrate.upgrade(client.store.engine)
    scripts.forget()
    assert scalar(client.store, "SELECT count(*) FROM scripts") == 1

    again = first.restore("fetched", by="name").wait(30)  # replays the old bug, fetches nothing
    assert again.status is Status.ENDED_ERROR and api.count("/items") == 2
    checked = invoke("check", second.id, "--script", FIXED)
    assert checked.exit_code == 0, checked.output
    restored = second.restore("fetched", by="name", script=FIXED).wait(30)
    assert restored.status is Status.ENDED_SUCCESS, restored.record().error
    assert restored.record().outputs == {"count": 2} and api.count("/items") == 2
    assert scalar(client.store, "SELECT count(*) FROM scripts") == 2
    assert second.record().source == FIXED and first.record().source == FAILING


def test_a_scripts_row_edited_in_the_database_is_refused(
    api: CountingApi,  # noqa: F811 - the fixture imported above
    client: Client,
    tmp_path: Path,
) -> None:
    handle = failed(tmp_path)
    digest = scripts.source_hash(FAILING)
    with client.store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE scripts SET source = :s WHERE hash = :h"),
            {"s": FAILING + "\nimport os  # edited\n", "h": digest},
        )
    scripts.forget()  # as another process would read it
    with pytest.raises(TamperedSavepointError):
        flowrt.check(handle.id, FIXED)
    with pytest.raises(TamperedSavepointError):  # checked first: refused, nothing changed
        handle.restore("fetched", by="name", script=FIXED)
    refused = handle.restore("fetched", by="name").wait(30).record()  # its step refuses it
    assert refused.status is Status.ENDED_ERROR
    assert "failed its signature check and was not loaded" in (refused.message or "")
    version = refused.version
    # The text under its own hash, and the execution pointed at it: its signature refuses it.
    evil, created_at = FAILING.replace("// 0", "// 1"), refused.created_at
    with client.store.engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO scripts (hash, source, created_at) VALUES (:h, :s, :t)"),
            {"h": scripts.source_hash(evil), "s": evil, "t": created_at},
        )
        conn.execute(
            sa.text("UPDATE executions SET script = :h WHERE id = :i"),
            {"h": scripts.source_hash(evil), "i": handle.id.replace("-", "")},
        )
    scripts.forget()
    with pytest.raises(TamperedSavepointError):
        handle.restore("fetched", by="name", script=FIXED)
    record = handle.record()
    assert record.version == version and record.status is Status.ENDED_ERROR
    assert api.count("/items") == 1

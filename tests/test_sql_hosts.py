"""Cloudomation's SQL connection types by host (SQLPG/SQLPS, SQLMY/SQLMYSQL) against the real
PostgreSQL, with fetchval, fetchrow, fetch, execute and positional or named parameters."""

from __future__ import annotations

import importlib.util
import json
import uuid

import pytest
import sqlalchemy as sa
from conftest import assert_refused, run_flow

from flowrt.connectors.base import connector_class
from flowrt.errors import ConnectorConfigError
from flowrt.status import Status

SECRET = "s3cr3t:p@ss/w#rd"  # trust auth lets any password in; its characters need quoting

CARELESS = """
    import flow_api

    def handler(system, this):
        db = this.get('input_value')['database']
        pg = dict(host='127.0.0.1', database=db, user='postgres')
        caught = {}
        for label, call in [
            ('no host', lambda: this.task('SQLPG', database=db, fetchval='SELECT 1')),
            ('port text', lambda: this.task('SQLPG', port='x', fetchval='SELECT 1', **pg)),
            ('port range', lambda: this.task('SQLPG', port=70000, fetchval='SELECT 1', **pg)),
            ('two users', lambda: this.task('SQLPG', username='a', fetchval='SELECT 1', **pg)),
            ('host not text', lambda: this.task('SQLPG', host=5, fetchval='SELECT 1')),
            ('unknown', lambda: this.task('SQLPG', fetchmany='SELECT 1', **pg)),
            ('two modes', lambda: this.task('SQLPG', fetch='SELECT 1', fetchval='SELECT 1', **pg)),
            ('no mode', lambda: this.task('SQLPG', **pg)),
            ('params type', lambda: this.task('SQLPG', fetchval='SELECT 1', params=3, **pg)),
            ('too few', lambda: this.task('SQLPG', fetchval='SELECT $2', params=[1], **pg)),
            ('bad sql', lambda: this.task('SQLPG', password=this.get('input_value')['pw'],
                                          fetchval='SELECT nope', **pg)),
        ]:
            try:
                call()
            except flow_api.FlowApiError as error:
                caught[label] = [type(error).__name__, str(error)]
        this.save(output_value=caught)
"""


def _database(pg_url: str) -> str:
    return sa.engine.make_url(pg_url).database or ""


def test_careless_sqlpg_connections_raise_catchable_errors_and_hide_the_password(
    client, pg_clean, tmp_path
):
    inputs = {"database": _database(pg_clean), "pw": SECRET}
    handle = run_flow(client, tmp_path, CARELESS, inputs=inputs)
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert_refused(
        handle.outputs,
        {
            "no host": ("InvalidCallError", "needs host="),
            "port text": ("InvalidCallError", "port must be a whole number from 1 to 65535"),
            "port range": ("InvalidCallError", "port must be a whole number from 1 to 65535"),
            "two users": ("InvalidCallError", "user= or username=, not both"),
            "host not text": ("InvalidCallError", "host must be a str, not int"),
            "unknown": ("InvalidCallError", "takes no parameter 'fetchmany'"),
            "two modes": ("InvalidCallError", "exactly one of fetch=, fetchrow=, fetchval="),
            "no mode": ("InvalidCallError", "exactly one of fetch=, fetchrow=, fetchval="),
            "params type": ("InvalidCallError", "params= is a dict"),
            "too few": ("InvalidCallError", "uses $2 but params= gives 1 value(s)"),
            "bad sql": ("ConnectorError", "nope"),
        },
    )
    shown = json.dumps(handle.outputs) + json.dumps([sp.variables for sp in handle.savepoints()])
    shown += " ".join(line.message for line in handle.logs()) + str(handle.record().error)
    assert SECRET not in shown and "s3cr3t" not in shown


LIBRARY_STYLE = """
    import flow_api

    def handler(system: flow_api.System, this: flow_api.Execution):
        inputs = this.get('input_value')
        pg = dict(host='127.0.0.1', database=inputs['database'], user='postgres',
                  password=inputs['pw'])
        table = inputs['table']
        one = this.task('SQLPG', fetchval='SELECT 1', **pg).get('output_value')['result']
        version = this.task('SQLPS', port=5432, fetchval='SELECT version()',
                            **pg).get('output_value')['result']
        added = this.task('SQLPG', execute=f'INSERT INTO {table} VALUES ($1, $2), ($3, $4)',
                          params=[1, 'apple', 2, 'pear'], **pg).get('output_value')
        row = this.task('SQLPG', fetchrow=f'SELECT id, name FROM {table} WHERE id = :id',
                        params={'id': 2}, **pg).get('output_value')['result']
        none = this.task('SQLPG', fetchrow=f'SELECT id FROM {table} WHERE id > 9',
                         **pg).get('output_value')['result']
        rows = this.task('sqlpg', fetch=f'SELECT name FROM {table} WHERE id >= $1::int ORDER BY id',
                         params=['1'], **pg).get('output_value')['result']
        stored = this.connect('pg', fetchval=f'SELECT count(*) FROM {table}')
        this.log(postgres_server_version=version)
        this.save(output_value={'one': one, 'version': version, 'added': added, 'row': row,
                                'none': none, 'rows': rows,
                                'stored': stored.get('output_value')['result']})
"""


def test_a_library_style_flow_queries_postgresql_through_sqlpg_and_a_stored_connector(
    client, pg_clean, tmp_path
):
    database, table = _database(pg_clean), f"sqlhost_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(pg_clean)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)")
    client.set_connector("pg", "SQLPG", host="127.0.0.1", database=database, user="postgres")
    try:
        inputs = {"database": database, "pw": SECRET, "table": table}
        handle = run_flow(client, tmp_path, LIBRARY_STYLE, inputs=inputs)
        assert handle.status is Status.ENDED_SUCCESS, handle.record().error
        out = handle.outputs
        assert out["one"] == 1 and out["version"].startswith("PostgreSQL")
        assert out["added"] == {"result": None, "rowcount": 2}
        assert out["row"] == {"id": 2, "name": "pear"} and out["none"] is None
        assert out["rows"] == [{"name": "apple"}, {"name": "pear"}] and out["stored"] == 2
        with engine.begin() as conn:
            assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() == 2
        shown = json.dumps([sp.variables for sp in handle.savepoints()])
        assert SECRET not in shown and "s3cr3t" not in shown
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE {table}")
        engine.dispose()


@pytest.mark.skipif(
    importlib.util.find_spec("pymysql") is not None, reason="PyMySQL is installed here"
)
def test_sqlmy_without_its_driver_says_which_driver_to_install(client, tmp_path):
    handle = run_flow(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            out = {}
            for kind in ('SQLMY', 'SQLMYSQL'):
                try:
                    this.task(kind, host='127.0.0.1', user='root', fetchval='SELECT 1')
                except flow_api.FlowApiError as error:
                    out[kind] = [type(error).__name__, str(error)]
            this.save(output_value=out)
        """,
    )
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    for kind in ("SQLMY", "SQLMYSQL"):
        name, text = handle.outputs[kind]
        assert name == "InvalidCallError" and "pip install pymysql" in text, kind
    assert connector_class("sqlmysql").type_name == "sqlmysql"
    with pytest.raises(ConnectorConfigError, match="pip install pymysql"):
        client.set_connector("my", "SQLMY", host="127.0.0.1", password=SECRET)
    assert client.list_named("connector") == []

"""A row written by anyone else is refused before use, on SQLite and PostgreSQL alike.

Each test alters one signed column with plain SQL, then goes through the user's entry points
(`flowrt.start`, `Handle.restore`, the `flowrt` CLI) and asserts that the execution ends
ENDED_ERROR saying the row was altered, and that nothing from the row ran or was unpickled
(injected code would create a marker file).
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import ROOT, SECRET, write_flow

import flowrt
from flowrt.client import Handle
from flowrt.errors import TamperedFlowError
from flowrt.status import Status
from flowrt.storage.rows import is_uuid

FLOWRT = Path(sys.executable).parent / "flowrt"  # the console script of this virtualenv
FLOW = textwrap.dedent("""
    import flow_api

    def handler(system, this, inputs):
        got = this.get('input_value')
        this.save(output_value={'n': got['n']})
        again = this.save_dump('retry-here')
        if again.restored == 0:
            this.error('first attempt')
        this.save(output_value={'n': got['n'], 'restored': again.restored})
        return this.success('done')
""")


def injected(marker: Path) -> str:
    """A flow whose module body writes `marker`: proof that it ran."""
    return textwrap.dedent(f"""
        import flow_api
        open({str(marker)!r}, 'w').close()

        def handler(system, this):
            open({str(marker)!r}, 'w').close()
            return this.success('injected')
    """)


class WritesFileWhenUnpickled:
    """A payload whose unpickling creates `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


class Backend:
    """The embedded flowrt on one database, with a raw SQL connection to alter its rows."""

    def __init__(self, url: str, set_env: Callable[..., dict[str, str]]) -> None:
        self.url, self.set_env = url, set_env
        self.set_env(FLOWRT_DATABASE_URL=url)
        self.engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))

    def sql(self, statement: str, **params: object) -> None:
        """Run `statement`, which must change a row; ids are given as flowrt spells them."""
        sqlite = self.engine.dialect.name == "sqlite"
        for key, value in params.items():
            if sqlite and isinstance(value, str) and is_uuid(value):
                params[key] = uuid.UUID(value).hex  # SQLite keeps ids as 32 hex digits
        with self.engine.begin() as conn:
            assert conn.execute(sa.text(statement), params).rowcount > 0, statement

    def first_attempt(self, flow: str, n: int) -> Handle:
        """Start the flow; it ends ENDED_ERROR on its first attempt, ready for a restore."""
        handle = flowrt.start(flow, {"n": n}).wait()
        assert handle.status is Status.ENDED_ERROR, handle.record().message
        return handle

    def savepoint_id(self, handle: Handle, seq: int) -> str:
        (found,) = [sp.id for sp in handle.savepoints() if sp.seq == seq]
        return found

    def restore_and_refuse(self, handle: Handle, seq: int = 3) -> str:
        """Restore the savepoint `seq`; the execution must end ENDED_ERROR, refused."""
        handle.restore(self.savepoint_id(handle, seq)).wait()
        record = handle.record()
        assert record.status is Status.ENDED_ERROR
        assert "failed its signature check and was not loaded" in (record.message or "")
        return record.message or ""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, flowrt_env: Callable[..., dict[str, str]]
) -> Iterator[Backend]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tamper.db'}"
    else:
        url = request.getfixturevalue("pg_clean")
    backend = Backend(url, flowrt_env)
    yield backend
    backend.engine.dispose()


def test_an_untouched_execution_restores_and_succeeds(backend: Backend, tmp_path: Path) -> None:
    handle = backend.first_attempt(write_flow(tmp_path, FLOW), 3)
    handle.restore(backend.savepoint_id(handle, 3)).wait()
    assert handle.status is Status.ENDED_SUCCESS
    assert handle.outputs == {"n": 3, "restored": 1}


def test_an_answer_copied_from_another_execution_is_refused(
    backend: Backend, tmp_path: Path
) -> None:
    path = write_flow(tmp_path, FLOW)
    three, four = backend.first_attempt(path, 3), backend.first_attempt(path, 4)
    backend.sql(
        "UPDATE savepoints SET answer = (SELECT answer FROM savepoints WHERE id = :source) "
        "WHERE id = :target",
        source=backend.savepoint_id(four, 2),
        target=backend.savepoint_id(three, 2),
    )
    message = backend.restore_and_refuse(three)
    assert f"savepoint #2 ({backend.savepoint_id(three, 2)})" in message
    assert three.outputs == {"n": 3}  # never {'n': 4}


def test_an_answer_copied_from_another_savepoint_of_the_same_execution_is_refused(
    backend: Backend, tmp_path: Path
) -> None:
    handle = backend.first_attempt(write_flow(tmp_path, FLOW), 3)
    backend.sql(
        "UPDATE savepoints SET answer = (SELECT answer FROM savepoints WHERE id = :source) "
        "WHERE id = :target",
        source=backend.savepoint_id(handle, 3),
        target=backend.savepoint_id(handle, 2),
    )
    backend.restore_and_refuse(handle)


def test_a_pickle_written_into_an_answer_is_refused_and_never_unpickled(
    backend: Backend, tmp_path: Path
) -> None:
    handle = backend.first_attempt(write_flow(tmp_path, FLOW), 3)
    marker = tmp_path / "unpickled"
    blob = b"\x03" + pickle.dumps(WritesFileWhenUnpickled(marker), protocol=5)
    backend.sql(
        "UPDATE savepoints SET answer = :blob WHERE id = :id",
        blob=blob,
        id=backend.savepoint_id(handle, 2),
    )
    backend.restore_and_refuse(handle)
    assert not marker.exists()


def test_edited_inputs_are_refused(backend: Backend, tmp_path: Path) -> None:
    handle = backend.first_attempt(write_flow(tmp_path, FLOW), 3)
    backend.sql("UPDATE executions SET inputs = '{\"n\": 99}' WHERE id = :id", id=handle.id)
    message = backend.restore_and_refuse(handle)
    assert f"the source and inputs of execution {handle.id}" in message


def test_an_edited_source_is_refused_and_never_runs(backend: Backend, tmp_path: Path) -> None:
    handle = backend.first_attempt(write_flow(tmp_path, FLOW), 3)
    marker = tmp_path / "injected-ran"
    backend.sql(
        "UPDATE executions SET source = :source WHERE id = :id",
        source=injected(marker),
        id=handle.id,
    )
    backend.restore_and_refuse(handle)
    assert not marker.exists()


def test_an_edited_digest_is_refused(backend: Backend, tmp_path: Path) -> None:
    handle = backend.first_attempt(write_flow(tmp_path, FLOW), 3)
    backend.sql(
        "UPDATE savepoints SET digest = :digest WHERE id = :id",
        digest=b"\x00" * 8,
        id=backend.savepoint_id(handle, 1),
    )
    backend.restore_and_refuse(handle)


def test_a_savepoint_moved_from_another_execution_is_refused(
    backend: Backend, tmp_path: Path
) -> None:
    path = write_flow(tmp_path, FLOW)
    three, four = backend.first_attempt(path, 3), backend.first_attempt(path, 4)
    moved = backend.savepoint_id(four, 3)
    backend.sql(
        "UPDATE savepoints SET execution_id = :three WHERE id = :id", three=three.id, id=moved
    )
    three.restore(moved).wait()
    record = three.record()
    assert record.status is Status.ENDED_ERROR
    assert f"savepoint #3 ({moved})" in (record.message or "")
    assert "failed its signature check" in (record.message or "")
    assert three.outputs == {"n": 3}


def test_a_row_without_a_signature_is_refused_naming_flowrt_db_resign(
    backend: Backend, tmp_path: Path
) -> None:
    handle = backend.first_attempt(write_flow(tmp_path, FLOW), 3)
    backend.sql("UPDATE executions SET signature = NULL WHERE id = :id", id=handle.id)
    message = backend.restore_and_refuse(handle)
    assert "flowrt db resign" in message


def _legacy(blob: bytes | None, key: bytes) -> bytes | None:
    # The blob format of schema 0003: kind (1 pickle, 2 dill) + MAC(kind + payload) + payload.
    if blob is None:
        return None
    kind, payload = {3: b"\x01", 4: b"\x02"}[blob[0]], blob[1:]
    return kind + hmac.new(key, kind + payload, hashlib.sha256).digest()[:16] + payload


def test_rows_from_before_signatures_are_refused_until_flowrt_db_resign_signs_them(
    backend: Backend, tmp_path: Path
) -> None:
    handle = backend.first_attempt(write_flow(tmp_path, FLOW), 3)
    backend.sql("UPDATE executions SET signature = NULL WHERE id = :id", id=handle.id)
    for sp in handle.savepoints():
        backend.sql(
            "UPDATE savepoints SET signature = NULL, answer = :answer, reads = :reads "
            "WHERE id = :id",
            answer=_legacy(sp.answer, SECRET.encode()),
            reads=_legacy(sp.reads, SECRET.encode()),
            id=sp.id,
        )
    assert "flowrt db resign" in backend.restore_and_refuse(handle)
    flowrt.shutdown()
    done = subprocess.run(
        [str(FLOWRT), "db", "resign"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "signed 1 executions, 4 savepoints" in done.stdout
    handle = flowrt.get(handle.id)
    handle.restore(backend.savepoint_id(handle, 3)).wait()
    assert handle.status is Status.ENDED_SUCCESS, handle.record().message
    assert handle.outputs == {"n": 3, "restored": 2}


def test_flowrt_db_resign_leaves_a_legacy_blob_with_a_foreign_mac_refused(
    backend: Backend, tmp_path: Path
) -> None:
    handle = backend.first_attempt(write_flow(tmp_path, FLOW), 3)
    second = backend.savepoint_id(handle, 2)
    blob = [sp.answer for sp in handle.savepoints() if sp.id == second][0]
    backend.sql(
        "UPDATE savepoints SET signature = NULL, answer = :answer WHERE id = :id",
        answer=_legacy(blob, b"another-secret-of-someone-else"),
        id=second,
    )
    flowrt.shutdown()
    done = subprocess.run(
        [str(FLOWRT), "db", "resign"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "1 savepoints refused" in done.stdout
    handle = flowrt.get(handle.id)
    assert "flowrt db resign" in backend.restore_and_refuse(handle)


def test_a_registered_flow_with_an_edited_source_is_refused_at_start(
    backend: Backend, tmp_path: Path
) -> None:
    marker = tmp_path / "injected-ran"
    flowrt.default_client().register_flow("job", write_flow(tmp_path, FLOW))
    backend.sql(
        "UPDATE named SET value = :value WHERE kind = 'flow' AND name = 'job'",
        value=_json({"source": injected(marker)}),
    )
    with pytest.raises(TamperedFlowError) as refused:
        flowrt.start("job", {"n": 1})
    assert "the registered flow 'job' failed its signature check" in str(refused.value)
    assert not marker.exists()
    assert flowrt.default_client().list_executions() == []


def test_a_child_of_a_registered_flow_with_an_edited_source_ends_its_parent_refused(
    backend: Backend, tmp_path: Path
) -> None:
    marker = tmp_path / "injected-ran"
    flowrt.default_client().register_flow("child", write_flow(tmp_path, injected(marker), "c"))
    marker.unlink()  # registering checked the script, which ran its module body once
    backend.sql(
        "UPDATE named SET value = :value WHERE kind = 'flow' AND name = 'child'",
        value=_json({"source": injected(marker) + "\n# edited\n"}),
    )
    parent = "import flow_api\n\ndef handler(system, this):\n    this.flow('child')\n"
    handle = flowrt.start(write_flow(tmp_path, parent, "parent")).wait()
    assert handle.status is Status.ENDED_ERROR
    assert "the registered flow 'child' failed its signature check" in (
        handle.record().message or ""
    )
    assert not marker.exists()


def test_the_cli_refuses_a_registered_flow_with_an_edited_source_with_exit_code_2(
    backend: Backend, tmp_path: Path
) -> None:
    marker = tmp_path / "injected-ran"
    flowrt.default_client().register_flow("job", write_flow(tmp_path, FLOW))
    backend.sql(
        "UPDATE named SET value = :value WHERE kind = 'flow' AND name = 'job'",
        value=_json({"source": injected(marker)}),
    )
    flowrt.shutdown()
    done = subprocess.run(
        [str(FLOWRT), "run", "job", "-i", "n=1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "failed its signature check" in done.stderr
    assert not marker.exists()


def _json(value: object) -> str:
    import json

    return json.dumps(value)

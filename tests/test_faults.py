"""Redis, then PostgreSQL, restart under running executions: workers reconnect, nothing is lost.

The servers are private to this module (a Redis and a PostgreSQL cluster on free ports),
so restarting them disturbs no other test. Redis keeps nothing across a restart (no RDB, no
AOF): every queued and unacknowledged step message is lost, and only flowrt's leases and
reaper can bring those executions back.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import WorkerProcesses, reachable, wait_until, write_flow

import flowrt
from flowrt.status import Status

REDIS_SERVER = "/usr/bin/redis-server"
PG_BIN = Path("/usr/local/bin")
EXECUTIONS = 24
ROUNDS = 60  # each round sleeps 0.2 s: every execution runs for 12 s or more
SETTLE_S = 90.0

SUMMING_FLOW = textwrap.dedent("""
    import flow_api

    def handler(system, this):
        rounds = this.get('input_value')['rounds']
        total = 0
        for i in range(rounds):
            total += this.get('input_value')['base'] * (i + 1)
            this.sleep(0.2)
        this.save(output_value={'total': total})
        return this.success('summed')
""")


def expected_total(base: int, rounds: int) -> int:
    return sum(base * (i + 1) for i in range(rounds))


def expected_seqs(rounds: int) -> list[int]:
    # The first get, a get and a sleep per round, then save and success.
    return list(range(1, 2 * rounds + 4))


def need(present: bool, message: str) -> None:
    """Skip when something the servers need is absent, or fail under CI (as `need_service`)."""
    if present:
        return
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must not skip)")
    pytest.skip(message)


def has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


class PrivateRedis:
    """A redis-server of this module's own that forgets everything when it restarts."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = folder / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--dir", str(self.folder)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until(lambda: reachable(self.port), 20, f"Redis on port {self.port}")
        assert not (self.folder / "dump.rdb").exists(), "Redis must come back empty"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class PrivatePostgres:
    """A PostgreSQL cluster of this module's own, trust auth on loopback, run as `postgres`."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.data, self.log_path = folder / "data", folder / "postgresql.log"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/flowrt_faults"
        # PostgreSQL refuses to run as root.
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def run(self, *arguments: str) -> None:
        done = subprocess.run([*self.prefix, *arguments], capture_output=True, cwd=self.folder)
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")
            raise RuntimeError(f"{' '.join(arguments)} failed ({done.returncode}):\n{output}")

    def create(self) -> None:
        self.run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust")
        self.start()
        admin = sa.create_engine(
            self.url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE flowrt_faults")
        admin.dispose()

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self.run(
            str(PG_BIN / "pg_ctl"),
            *("-D", str(self.data), "-l", str(self.log_path), "-o", options),
            *("-w", "-t", "30", "start"),
        )

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    need(Path(REDIS_SERVER).exists(), f"{REDIS_SERVER} is not installed")
    folder = tmp_path / "redis"
    folder.mkdir()
    redis = PrivateRedis(folder)
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    for name in ("initdb", "pg_ctl", "postgres"):
        need((PG_BIN / name).exists(), f"{PG_BIN / name} is not installed")
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        need(shutil.which("runuser") is not None, "runuser is not installed")
        need(has_user("postgres"), "there is no user postgres to run PostgreSQL as")
    # Not under tmp_path: pytest makes that readable by its owner only, and the server
    # runs as the postgres user.
    folder = Path(tempfile.mkdtemp(prefix="flowrt-faults-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    postgres = PrivatePostgres(folder)
    try:
        postgres.create()
        from flowrt.storage import migrate
        from flowrt.storage.sql import create_engine

        engine = create_engine(postgres.url)
        migrate.upgrade(engine)
        engine.dispose()
        yield postgres
    finally:
        try:
            postgres.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


class Watch:
    """The test's view of the run: progress read from the database, processes, and logs."""

    def __init__(
        self, workers: WorkerProcesses, redis: PrivateRedis, postgres: PrivatePostgres
    ) -> None:
        self.workers, self.servers = workers, (redis, postgres)
        self.engine = sa.create_engine(postgres.url, pool_pre_ping=True)

    def savepoints(self) -> dict[str, int]:
        """How many savepoints each execution has."""
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT execution_id, count(*) FROM savepoints GROUP BY execution_id"
            )
            return {str(execution): count for execution, count in rows}

    def unended(self) -> int:
        """How many executions have not ended."""
        ended = [status.value for status in Status if status.ended]
        query = sa.text("SELECT count(*) FROM executions WHERE status NOT IN :ended")
        query = query.bindparams(sa.bindparam("ended", expanding=True))
        with self.engine.connect() as conn:
            return int(conn.execute(query, {"ended": ended}).scalar_one())

    def log_sizes(self, names: list[str]) -> dict[str, int]:
        return {name: len(self.workers.log(name)) for name in names}

    def logged_since(self, text: str, sizes: dict[str, int]) -> bool:
        """Whether every process in `sizes` logged `text` since it had that many bytes."""
        return all(text.encode() in self.workers.log(n)[size:] for n, size in sizes.items())

    def until(self, condition: Callable[[], object], timeout_s: float, what: str) -> None:
        """Wait for `condition`, failing at once, with the logs, if a worker or beat exits."""
        try:
            wait_until(lambda: self.all_alive() and condition(), timeout_s, what)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.report()}") from None

    def all_alive(self) -> bool:
        exited = {
            getattr(proc, "node", "beat"): proc.returncode
            for proc in self.workers.procs
            if proc.poll() is not None
        }
        assert not exited, f"processes exited (exit codes): {exited}"
        return True

    def report(self) -> str:
        """Warnings, errors and the tail of every log, for an assertion message."""
        parts = []
        for path in sorted(self.workers.tmp_path.glob("*.log")):
            lines = path.read_text(errors="replace").splitlines()
            alarming = [line for line in lines if any(w in line for w in ALARMING)]
            parts.append(f"--- {path} (warnings and errors, first 40) ---")
            parts += alarming[:40]
            parts.append(f"--- {path} (last 30 lines) ---")
            parts += lines[-30:]
        for server in self.servers:
            parts += [f"--- {server.log_path} (last 20 lines) ---", tail(server.log_path, 20)]
        parts += ["--- executions not ended ---", self.unended_rows()]
        return "\n".join(parts)

    def unended_rows(self) -> str:
        query = (
            "SELECT e.id, e.status, e.version, e.worker, e.lease_until, e.wake_at, now(),"
            " (SELECT count(*) FROM savepoints s WHERE s.execution_id = e.id)"
            " FROM executions e WHERE e.ended_at IS NULL ORDER BY e.created_at"
        )
        try:
            with self.engine.connect() as conn:
                return "\n".join(str(tuple(row)) for row in conn.exec_driver_sql(query))
        except sa.exc.DBAPIError as error:
            return f"(cannot read them: {error})"

    def close(self) -> None:
        self.engine.dispose()


ALARMING = ("WARNING", "ERROR", "CRITICAL")


def test_executions_finish_when_redis_then_postgresql_restart_under_them(
    flowrt_env, private_redis, private_postgres, tmp_path
):
    env = flowrt_env(
        FLOWRT_DATABASE_URL=private_postgres.url,
        FLOWRT_BROKER_URL=private_redis.url,
        FLOWRT_LEASE_SECONDS="3",
        FLOWRT_REAP_INTERVAL_SECONDS="1",
    )
    workers = WorkerProcesses(env, tmp_path)
    watch = Watch(workers, private_redis, private_postgres)
    try:
        names = ["alpha", "beta"]
        for name in names:
            workers.start(name)
        workers.start_beat()
        path = write_flow(tmp_path, SUMMING_FLOW)
        handles = [flowrt.start(path, {"base": n, "rounds": ROUNDS}) for n in range(EXECUTIONS)]
        watch.until(
            lambda: sum(count >= 5 for count in watch.savepoints().values()) == EXECUTIONS,
            60,
            "every execution to be under way",
        )

        # Redis goes away and comes back empty: the queued steps, the sleeps' steps the
        # workers hold (eta) and the reaper's messages are all lost.
        before_redis, sizes = watch.savepoints(), watch.log_sizes(names)
        private_redis.stop()
        watch.until(
            lambda: watch.logged_since("Connection to broker lost", sizes),
            30,
            "both workers to notice that Redis is away",
        )
        private_redis.start()
        watch.until(
            lambda: all(count > before_redis[e] for e, count in watch.savepoints().items()),
            60,
            "every execution to go on after Redis restarted",
        )

        # PostgreSQL stops (fast: every connection is cut) and starts again under them.
        assert watch.unended() > 0, "every execution ended before PostgreSQL restarted"
        sizes = watch.log_sizes(names)
        private_postgres.stop()
        watch.until(
            lambda: watch.logged_since("); retrying", sizes),
            30,
            "both workers to notice that PostgreSQL is away",
        )
        private_postgres.start()

        watch.until(
            lambda: watch.unended() == 0, SETTLE_S, "every execution to end after the restarts"
        )
        for n, handle in enumerate(handles):
            record = handle.record()
            where = f"execution {n} ({handle.id}): {record.message}\n{record.error}"
            assert record.status is Status.ENDED_SUCCESS, where + "\n" + watch.report()
            assert record.outputs == {"total": expected_total(n, ROUNDS)}, where
            seqs = [p.seq for p in handle.savepoints()]
            assert seqs == expected_seqs(ROUNDS), where  # none duplicated, none skipped
        assert watch.all_alive()  # the same processes: they reconnected by themselves
    finally:
        watch.close()
        workers.stop_all()

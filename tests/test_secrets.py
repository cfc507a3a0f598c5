"""Secrets kept secret: a shared broker needs FLOWRT_SECRET, keys rotate, credentials are masked,
private files are private, and one corrupt status cannot break a listing or the reaper."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import ROOT, LocalHttpServer, base_env, need_service, write_flow

import config
import flowrt
from flowrt.leases import reap
from flowrt.status import Status

FLOWRT = Path(sys.executable).parent / "flowrt"  # the console script of this virtualenv
OLD, NEW = "old-secret-0123456789abcdef", "new-secret-0123456789abcdef"
PASSWORD = "pw-Sup3r-s3cret-value"
TOKEN = "tok-9f8e7d6c5b4a-bearer"

RETRY = textwrap.dedent("""
    import flow_api

    def handler(system, this, inputs):
        got = this.get('input_value')
        again = this.save_dump('retry-here')
        if again.restored == 0:
            this.error('first attempt')
        this.save(output_value={'n': got['n']})
        return this.success('done')
""")


def _without_secret(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRT_")}
    env.update(base_env(home, **extra))
    del env["FLOWRT_SECRET"]
    return env


# --- FLOWRT_SECRET on a shared broker ------------------------------------------------------------


def test_a_worker_without_flowrt_secret_on_a_redis_broker_refuses_to_start(
    tmp_path: Path,
) -> None:
    need_service("Redis", 6379)
    env = _without_secret(tmp_path, FLOWRT_BROKER_URL="redis://127.0.0.1:6379/7")
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool=threads", "-c", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "FLOWRT_SECRET is not set" in done.stderr
    assert not (tmp_path / "secret").exists()


@pytest.mark.parametrize("command", [["executions"], ["db", "upgrade"]], ids=" ".join)
def test_a_client_without_flowrt_secret_on_a_redis_broker_refuses_to_start(
    tmp_path: Path, command: list[str]
) -> None:
    env = _without_secret(tmp_path, FLOWRT_BROKER_URL="redis://127.0.0.1:6379/7")
    done = subprocess.run(
        [str(FLOWRT), *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert "FLOWRT_SECRET is not set" in done.stderr
    assert "Traceback" not in done.stderr
    with pytest.raises(config.SettingsError, match="FLOWRT_SECRET"):
        config.load(env)


def test_a_short_secret_in_the_list_is_refused_naming_its_place(tmp_path: Path) -> None:
    env = base_env(tmp_path, FLOWRT_SECRET=f"{NEW}, short")
    with pytest.raises(config.SettingsError, match="secret number 2"):
        config.load(env)


def test_the_secret_list_is_comma_separated_and_the_first_signs(tmp_path: Path) -> None:
    settings = config.load(base_env(tmp_path, FLOWRT_SECRET=f" {NEW} ,{OLD},"))
    assert settings.secrets == (NEW.encode(), OLD.encode())
    options = settings.runtime_options()
    assert options["secret"] == NEW.encode() and options["old_secrets"] == (OLD.encode(),)


# --- rotation ------------------------------------------------------------------------------------


def test_rows_signed_with_the_old_key_verify_while_it_is_listed_second_and_not_after(
    flowrt_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    flowrt_env(FLOWRT_SECRET=OLD)
    path = write_flow(tmp_path, RETRY)
    first, second = (flowrt.start(path, {"n": n}).wait() for n in (1, 2))
    assert first.status is second.status is Status.ENDED_ERROR
    flowrt.shutdown()

    flowrt_env(FLOWRT_SECRET=f"{NEW},{OLD}")
    first = flowrt.get(first.id)
    first.restore("retry-here", by="name").wait()
    assert first.status is Status.ENDED_SUCCESS, first.record().message
    assert first.outputs == {"n": 1}
    flowrt.shutdown()

    flowrt_env(FLOWRT_SECRET=NEW)
    second = flowrt.get(second.id)
    second.restore("retry-here", by="name").wait()
    record = second.record()
    assert record.status is Status.ENDED_ERROR
    assert "failed its signature check" in (record.message or "")
    assert "FLOWRT_SECRET does not list" in (record.message or "")


# --- masking -------------------------------------------------------------------------------------


class Refuses(LocalHttpServer):
    """Answers 401, echoing the Authorization header it got."""

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = f"bad credentials: {self.headers.get('X-Api-Token')}".encode()
                self.send_response(401)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def test_connector_list_never_shows_passwords_or_token_headers(
    flowrt_env: Callable[..., dict[str, str]],
) -> None:
    env = {**os.environ, **flowrt_env()}
    url = f"postgresql+psycopg://flow:{PASSWORD}@127.0.0.1/db"
    for arguments in (
        ["connector", "set", "db", "--type", "sql", "--url", url],
        ["connector", "set", "api", "--type", "rest", "--base-url", f"http://u:{PASSWORD}@h/"]
        + ["--header", f"X-Api-Token={TOKEN}", "--header", "Accept=text/plain"],
    ):
        done = subprocess.run([str(FLOWRT), *arguments], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    for extra in ([], ["--json"]):
        done = subprocess.run(
            [str(FLOWRT), "connector", "list", *extra], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        shown = done.stdout + done.stderr
        assert PASSWORD not in shown and TOKEN not in shown
        assert "flow:***@127.0.0.1" in shown and "text/plain" in shown


def test_a_rest_401_error_and_the_logs_never_show_the_password_or_token(
    client: flowrt.Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = Refuses()
    server.start()
    try:
        host = server.base_url.split("://", 1)[1]
        client.set_connector(
            "api",
            "rest",
            base_url=f"http://user:{PASSWORD}@{host}/",
            headers={"X-Api-Token": TOKEN},
        )
        flow = "import flow_api\n\ndef handler(system, this):\n    this.connect('api', path='/x')\n"
        with caplog.at_level(logging.DEBUG):
            handle = flowrt.start(write_flow(tmp_path, flow)).wait()
    finally:
        server.stop()
    record = handle.record()
    assert record.status is Status.ENDED_ERROR
    assert "answered 401" in (record.message or "")
    shown = f"{record.message}\n{record.error}\n{caplog.text}"
    assert PASSWORD not in shown and TOKEN not in shown


def test_a_bad_sql_connector_url_is_refused_without_showing_its_password(
    client: flowrt.Client,
) -> None:
    with pytest.raises(flowrt.FlowrtError) as refused:
        client.set_connector("db", "sql", url=f"nosuchdb+x://flow:{PASSWORD}@h/db")
    assert PASSWORD not in str(refused.value)


# --- private files -------------------------------------------------------------------------------


def test_the_embedded_database_and_generated_secret_are_readable_by_their_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    for key in [k for k in os.environ if k.startswith("FLOWRT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("FLOWRT_HOME", str(home))
    previous = os.umask(0o022)
    try:
        flow = "import flow_api\n\ndef handler(system, this):\n    this.log('hi')\n"
        handle = flowrt.start(write_flow(tmp_path, flow)).wait()
        assert handle.status is Status.ENDED_SUCCESS
    finally:
        os.umask(previous)
        flowrt.shutdown()
    for name in ("secret", "flowrt.db"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600, name


# --- a corrupt status ----------------------------------------------------------------------------


def test_a_corrupt_status_shows_as_unknown_and_breaks_neither_listing_nor_reaper(
    client: flowrt.Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flow = "import flow_api\n\ndef handler(system, this):\n    this.log('hi')\n"
    good = flowrt.start(write_flow(tmp_path, flow)).wait()
    bad = flowrt.start(write_flow(tmp_path, flow, "other")).wait()
    engine = sa.create_engine(client.settings.database_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE executions SET status = 'HACKED' WHERE id = :id"),
            {"id": uuid.UUID(bad.id).hex},
        )
    engine.dispose()
    with caplog.at_level(logging.WARNING, logger="flowrt"):
        listed = {r.id: r.status for r in client.list_executions()}
        assert listed == {good.id: Status.ENDED_SUCCESS, bad.id: Status.UNKNOWN}
        assert [r.id for r in client.list_executions(status=Status.UNKNOWN)] == [bad.id]
        reap(client.runtime)
    assert "'HACKED'" in caplog.text
    env = {**os.environ}
    done = subprocess.run([str(FLOWRT), "executions"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"{bad.id}  UNKNOWN" in done.stdout and good.id in done.stdout


def test_a_short_secret_is_masked_where_it_stands_alone_without_garbling_the_message():
    from flowrt.connectors.masking import mask_text

    text = "no parameter 'auth'; it takes base_url, user 'u' and pw=ab! at http://u:ab@h"
    masked = mask_text(text, ["u", "ab"])
    assert masked == (
        "no parameter 'auth'; it takes base_url, user '***' and pw=***! at http://***:***@h"
    )
    assert mask_text("token s3cr3t-long in s3cr3t-longer", ["s3cr3t-long"]) == (
        "token *** in ***er"
    )

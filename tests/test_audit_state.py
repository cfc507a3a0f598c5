"""Defects an audit reproduced through the user's entry points (masking, unloading, tampered
chains); each test failed before its fix and guards it now.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import LocalHttpServer, wait_until, write_flow

import flowrt
from flowrt.status import Status

FLOWRT = Path(sys.executable).parent / "flowrt"  # the console script of this virtualenv


# --- masking -------------------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["pa/ss-S3cret", "pa#ss-S3cret", "pa?ss-S3cret"])
def test_connector_list_masks_a_password_holding_a_slash_hash_or_question_mark(
    flowrt_env: Callable[..., dict[str, str]], password: str
) -> None:
    env = {**os.environ, **flowrt_env()}
    url = f"postgresql+psycopg://flow:{password}@127.0.0.1/db"
    done = subprocess.run(
        [str(FLOWRT), "connector", "set", "db", "--type", "sql", "--url", url],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr  # SQLAlchemy parses it: the password is all of it
    for extra in ([], ["--json"]):
        done = subprocess.run(
            [str(FLOWRT), "connector", "list", *extra], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert "S3cret" not in done.stdout + done.stderr


TOKEN = "tok-4b1d-9f8e7d6c5b4a"


class EchoesToken(LocalHttpServer):
    """Answers 401 naming the bearer token it got, as many APIs do ("token ... expired")."""

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                body = f'{{"error": "token {token} has expired"}}'.encode()
                self.send_response(401)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def test_a_rest_error_echoing_the_bearer_token_does_not_show_it(
    client: flowrt.Client, tmp_path: Path
) -> None:
    server = EchoesToken()
    server.start()
    try:
        client.set_connector(
            "api", "rest", base_url=server.base_url, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        flow = "import flow_api\n\ndef handler(system, this):\n    this.connect('api', path='/x')\n"
        handle = flowrt.start(write_flow(tmp_path, flow)).wait(30)
    finally:
        server.stop()
    record = handle.record()
    assert record.status is Status.ENDED_ERROR
    assert "401" in (record.message or "")
    assert TOKEN not in f"{record.message}\n{record.error}"


# --- unwinding -----------------------------------------------------------------------------------

SWALLOWS_UNLOAD = """
import contextlib
import flow_api

def handler(system, this, inputs):
    for _ in range(100_000):  # bounded, so the thread ends by itself in a few seconds
        with open(inputs['path'], 'a') as f:
            f.write('x\\n')
        with contextlib.suppress(BaseException):
            this.sleep(3600)  # longer than FLOWRT_SLEEP_MAX_SECONDS: unloaded at once
            break
    return this.success('woke')
"""


def test_flow_code_does_not_run_on_after_its_execution_is_unloaded(
    client: flowrt.Client, tmp_path: Path
) -> None:
    out = tmp_path / "out.txt"
    handle = flowrt.start(write_flow(tmp_path, SWALLOWS_UNLOAD), {"path": str(out)})

    def unloaded() -> bool:
        record = handle.record()
        return record.status is Status.WAITING and not record.worker

    wait_until(unloaded, 30, "the long sleep to be unloaded")

    def lines() -> int:
        return len(out.read_text().splitlines())

    try:
        wait_until(lambda: lines() > 1000, 5, "the flow's loop to run on")
        ran_on = True
    except AssertionError:
        ran_on = False
    assert not ran_on, f"the flow's own code ran {lines()} times after its unload"


# --- tampered rows -------------------------------------------------------------------------------

TWO_DUMPS = """
import flow_api

def handler(system, this):
    this.save_dump('a')
    this.save_dump('b')
    this.error('stop here')
"""


def test_a_parent_id_altered_into_a_cycle_is_refused_not_looped_on_forever(
    flowrt_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    env = {**os.environ, **flowrt_env(), "PYTHONHASHSEED": "0"}
    handle = flowrt.start(write_flow(tmp_path, TWO_DUMPS)).wait(30)
    assert handle.record().status is Status.ENDED_ERROR
    first, second = sorted(handle.savepoints(), key=lambda s: s.seq)[:2]
    engine = sa.create_engine(env["FLOWRT_DATABASE_URL"])
    with engine.begin() as conn:  # the first savepoint's parent becomes its own child
        conn.execute(
            sa.text("UPDATE savepoints SET parent_id = :p WHERE id = :i"),
            {"p": second.id.replace("-", ""), "i": first.id.replace("-", "")},
        )
    engine.dispose()
    flowrt.shutdown()
    try:
        done = subprocess.run(
            [str(FLOWRT), "restore", handle.id, "b", "--by", "name"],
            env=env,
            capture_output=True,
            text=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("flowrt restore still looping on the altered parent_id after 20 s")
    assert done.returncode != 0
    assert "signature" in done.stderr or "altered" in done.stderr
